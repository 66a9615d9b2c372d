"""Vendor simulators in process and a `SystemRegistry` configured for them, as the lab builds them
(`harness.vendors`): each system id is the vendor's name, each base URL an in-process host, each
transport a `VirtualTransport` on the simulator's app (optionally wrapped, e.g. to count requests).

Call everything here inside `run_virtual`: simulators stamp their data with the virtual clock.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from harness.clock import VirtualClock
from harness.rng import RandomSource
from harness.vendors import VENDORS, CernerAdapter, LabSecrets
from integrations.events import IntegrationEvent
from integrations.systems import SystemRegistry
from simulators.chaos import FaultScope, Outage
from simulators.transport import VirtualTransport

EMPI = "urn:oid:2.16.840.1.113883.3.9999.1"  # a made-up enterprise patient index namespace
EMPI_VALUE = "EMPI-000042"

#: Synthetic test data (not a real person): the patient every system holds in these tests.
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"use": "usual", "system": EMPI, "value": EMPI_VALUE}],
    "active": True,
    "name": [{"use": "official", "family": "Quintero", "given": ["Ada", "Lux"]}],
    "gender": "female",
    "birthDate": "1971-03-09",
    "telecom": [{"system": "phone", "value": "(555) 010-7788"}, {"system": "email", "value": "ada.q@example.org"}],
    "address": [{"use": "home", "line": ["12 Larch Way"], "city": "Fairview", "state": "OR", "postalCode": "97024",
                 "country": "US"}],
}


def patient(**changes: Any) -> dict[str, Any]:
    """`PATIENT` with top-level elements replaced (a value of None removes the element)."""
    body = copy.deepcopy(PATIENT)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


class InFlight:
    """ASGI wrapper: how many requests the simulator is serving at once, and the peak."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.now = 0
        self.peak = 0
        self.total = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@dataclass
class LabSystem:
    name: str
    secrets: LabSecrets
    simulator: Any  # the vendor's simulator: .app, .store, .chaos
    counter: InFlight
    root: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = f"http://{self.name}.ehrlab.test"

    def seed(self, body: dict[str, Any]) -> str:
        """Store `body` directly in the simulator; its server-assigned id."""
        return str(self.simulator.store.create(body)["id"])

    def fhir_outage(self, mode: str = "status", status: int = 503) -> None:
        """Every FHIR call fails (the token endpoint still answers): `status`, or `drop` the connection."""
        scope = FaultScope(path=VENDORS[self.name].fhir_path)
        self.simulator.chaos.outage = Outage(mode=mode, status=status, scope=scope)

    def config(self, limits: dict[str, Any] | None = None) -> dict[str, Any]:
        adapter = VENDORS[self.name]
        token_url = f"{self.root}{adapter.token_path}"
        auth: dict[str, Any]
        if self.name == "epic":
            assert self.secrets.signing_key is not None
            auth = {"method": "private_key_jwt", "token_url": token_url, "client_id": self.secrets.client_id,
                    "private_key": self.secrets.signing_key.as_pem(private=True).decode(),
                    "key_id": self.secrets.key_id, "algorithm": "ES384"}
        elif self.name == "cerner":
            auth = {"method": "client_secret_basic", "token_url": token_url, "client_id": self.secrets.client_id,
                    "client_secret": self.secrets.client_secret, "scope": CernerAdapter.scope}
        else:
            auth = {"method": "client_secret_post", "token_url": token_url, "client_id": self.secrets.client_id,
                    "client_secret": self.secrets.client_secret}
        system: dict[str, Any] = {"id": self.name, "vendor": self.name, "base_url": f"{self.root}{adapter.fhir_path}",
                                  "auth": auth}
        if limits is not None:
            system["limits"] = limits
        return system


def lab_systems(clock: VirtualClock, names: Sequence[str], seed: int = 7) -> dict[str, LabSystem]:
    sources = RandomSource(seed)
    systems = {}
    for name in names:
        secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
        simulator: Any = VENDORS[name].simulator(clock, sources.stream(f"simulator.{name}"), secrets)
        systems[name] = LabSystem(name=name, secrets=secrets, simulator=simulator, counter=InFlight(simulator.app))
    return systems


def build_registry(systems: dict[str, LabSystem], clock: VirtualClock, events: list[IntegrationEvent], *,
                   limits: dict[str, dict[str, Any]] | None = None, seed: int = 7,
                   **kwargs: Any) -> SystemRegistry:
    config = {"systems": [s.config((limits or {}).get(name)) for name, s in systems.items()]}
    transport_for: Callable[[Any], Any] = lambda system: VirtualTransport(systems[system.id].counter)  # noqa: E731
    return SystemRegistry.build(config, clock=clock, rng=RandomSource(seed).stream("systems"),
                                transport_for=transport_for, listener=events.append, **kwargs)
