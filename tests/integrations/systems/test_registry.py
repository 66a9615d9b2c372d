"""The registry against the four vendor simulators in process (virtual clock): every configured system
is built and reachable with its vendor's auth, and each system's pool limit holds, measured at the
simulator (requests it serves at once)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import BreakerState, IntegrationEvent, RequestCompleted, TokenIssued
from integrations.systems import PoolLimitedTransport, PoolLimits
from simulators.chaos import Latency
from tests.integrations.systems.support import PATIENT, build_registry, lab_systems

VENDOR_NAMES = ("epic", "cerner", "medplum", "allscripts")


def test_every_configured_system_is_built_with_its_vendors_auth_and_reads() -> None:
    clock = VirtualClock()

    async def main() -> tuple[dict[str, str], dict[str, str], list[Any], list[IntegrationEvent]]:
        systems = lab_systems(clock, VENDOR_NAMES)
        seeded = {name: system.seed(PATIENT) for name, system in systems.items()}
        events: list[IntegrationEvent] = []
        async with build_registry(systems, clock, events) as registry:
            read = {s.id: (await s.client.read("Patient", seeded[s.id])).id for s in registry}
            return seeded, read, list(registry.status()), events

    seeded, read, status, events = run_virtual(main)
    assert read == seeded
    assert [s.system_id for s in status] == list(VENDOR_NAMES)
    assert all(s.breaker_state is BreakerState.CLOSED and s.available for s in status)
    # two exchanges per system (the token request and the read), none in flight afterwards
    assert all((s.pool.exchanges, s.pool.in_flight) == (2, 0) for s in status)
    # events name the system: one token per system, every request answered 200
    assert sorted(e.vendor for e in events if isinstance(e, TokenIssued)) == sorted(VENDOR_NAMES)
    assert {(e.vendor, e.status) for e in events if isinstance(e, RequestCompleted)} == {
        (name, 200) for name in VENDOR_NAMES}


def _concurrent_reads(max_connections: int, reads: int = 8) -> tuple[int, int, int, int]:
    """`reads` concurrent reads of one Medplum system whose answers take 200 ms; (peak at the simulator,
    peak at the pool, reads that waited for a slot, reads served)."""
    clock = VirtualClock()

    async def main() -> tuple[int, int, int, int]:
        systems = lab_systems(clock, ["medplum"])
        medplum = systems["medplum"]
        patient_id = medplum.seed(PATIENT)
        medplum.simulator.chaos.latency = Latency(min_ms=200, max_ms=200)
        limits = {"medplum": {"max_connections": max_connections, "max_keepalive_connections": 1}}
        async with build_registry(systems, clock, [], limits=limits) as registry:
            client = registry.get("medplum").client
            results = await asyncio.gather(*(client.read("Patient", patient_id) for _ in range(reads)))
            stats = registry.get("medplum").pool.stats()
        return medplum.counter.peak, stats.peak_in_flight, stats.waited, len(results)

    return run_virtual(main)


def test_pool_limit_caps_requests_in_flight_to_a_system() -> None:
    simulator_peak, pool_peak, waited, served = _concurrent_reads(max_connections=2)
    assert served == 8
    assert simulator_peak == 2  # never more than 2 at the simulator, and the limit was reached
    assert pool_peak == 2
    assert waited > 0


def test_without_a_tight_limit_the_same_reads_overlap_more() -> None:
    simulator_peak, _, waited, served = _concurrent_reads(max_connections=8)
    assert served == 8
    assert simulator_peak == 8  # the measurement above can fail: here all 8 reads overlap
    assert waited == 0


def test_a_pool_slot_is_held_until_the_response_body_is_closed_and_freed_on_errors() -> None:
    async def main() -> list[tuple[int, int]]:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/boom":
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(200, content=b"x" * 10)

        pool = PoolLimitedTransport(httpx.MockTransport(handler), PoolLimits(max_connections=1,
                                                                              max_keepalive_connections=1))
        seen = []
        async with httpx.AsyncClient(transport=pool, base_url="http://x.test") as client:
            response = await client.send(client.build_request("GET", "/ok"), stream=True)
            seen.append((pool.stats().in_flight, pool.stats().exchanges))
            await response.aclose()
            seen.append((pool.stats().in_flight, pool.stats().exchanges))
            with pytest.raises(httpx.ConnectError):
                await client.get("/boom")
            seen.append((pool.stats().in_flight, pool.stats().exchanges))
            await client.get("/ok")  # would wait forever if a slot had leaked
            seen.append((pool.stats().in_flight, pool.stats().exchanges))
        return seen

    assert run_virtual(main) == [(1, 1), (0, 1), (0, 2), (0, 3)]
