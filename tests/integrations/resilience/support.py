"""A resilient client over the connector's fake vendor (tests/integrations/fakes.py), collecting events."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from harness.clock import VirtualClock
from integrations.events import IntegrationEvent
from integrations.fhir import BreakerConfig, RetryPolicy
from integrations.resilience import FeatureFlags, MonitorConfig, ProviderMonitor, ResilientFhirClient
from tests.integrations.fakes import FakeVendor, Kit, fhir_json, make_kit, outcome, patient

FHIR_PREFIX = "/fhir/R4/"


def ehr(request: httpx.Request) -> httpx.Response:
    """A healthy vendor: reads answer the patient asked for, searches one patient, writes echo the resource."""
    path = request.url.path.removeprefix(FHIR_PREFIX)
    if request.method == "GET" and path.startswith("Patient/"):
        return fhir_json(200, patient(path.split("/")[1]))
    if request.method == "GET" and path == "Patient":
        return fhir_json(200, {"resourceType": "Bundle", "type": "searchset", "total": 1,
                               "entry": [{"resource": patient("p1")}]})
    if request.method in ("POST", "PUT"):
        body = json.loads(request.content)
        body.setdefault("id", "new1")
        body["meta"] = {"versionId": "2"}
        return fhir_json(201 if request.method == "POST" else 200, body, {"ETag": 'W/"2"'})
    return outcome(404, "not-found", "no such thing")


def down(request: httpx.Request) -> httpx.Response:
    return outcome(503, "transient", "Service Unavailable")


@dataclass
class Rig:
    clock: VirtualClock
    kit: Kit
    vendor: FakeVendor
    flags: FeatureFlags
    monitor: ProviderMonitor
    client: ResilientFhirClient
    events: list[tuple[float, IntegrationEvent]]

    def of(self, kind: type[object]) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]

    async def close(self) -> None:
        await self.monitor.stop()
        await self.kit.close()


def make_rig(*, breaker: BreakerConfig | None = None, monitor: MonitorConfig | None = None,
             latency: float = 0.0) -> Rig:
    """Build inside `run_virtual`. The vendor is called `fake`, so its flags are `fake_fhir_*`."""
    clock = VirtualClock()
    vendor = FakeVendor(clock, latency=latency, default=ehr)
    kit = make_kit(vendor, retry=RetryPolicy(max_attempts=1),
                   breaker=breaker or BreakerConfig(window_size=4, minimum_calls=4, permitted_half_open_calls=2))
    events: list[tuple[float, IntegrationEvent]] = []

    def listen(event: IntegrationEvent) -> None:
        events.append((clock.monotonic(), event))

    kit.breaker.subscribe(listen)  # before the monitor and the client: transitions are heard first
    flags = FeatureFlags.for_vendors(["fake"], listener=listen)
    mon = ProviderMonitor("fake", clock, breaker=kit.breaker, config=monitor, listener=listen)
    client = ResilientFhirClient(kit.connector, clock=clock, flags=flags, monitor=mon, listener=listen)
    return Rig(clock=clock, kit=kit, vendor=vendor, flags=flags, monitor=mon, client=client, events=events)
