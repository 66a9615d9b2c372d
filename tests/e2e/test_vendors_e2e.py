"""The integration's connector against all four vendor simulators, built exactly as the lab builds them
(`harness.vendors.VENDORS`): read, search with paging, write; in virtual mode (in-process, virtual
clock) and in real mode (uvicorn on 127.0.0.1, real clock).

Allscripts' FHIR API is read-only (vendors.md §4) and the lab's client holds read scopes only, so there
"write" means: the write is refused and the connector raises its typed error (`Forbidden`, 403), never
a generic failure. The other three vendors accept the writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.clock import RealClock, VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets
from integrations.clock import Clock
from integrations.events import TokenIssued
from integrations.fhir import ConnectorError, Forbidden
from simulators.server import serve
from simulators.transport import VirtualTransport

PATIENTS = 5
PAGE = 2
WRITERS = ("medplum", "epic", "cerner")


@dataclass
class Outcome:
    read_id: str
    seeded: list[str]
    found: list[str]
    pages: int
    complete: bool
    created: tuple[str, str | None] | None
    updated_version: str | None
    write_error: ConnectorError | None
    tokens: int


def _observation(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org",
                              "code": "/min"}}


async def _exercise(name: str, clock: Clock, *, real: bool) -> Outcome:
    adapter = VENDORS[name]
    sources = RandomSource(11)
    secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
    simulator = adapter.simulator(clock, sources.stream(f"simulator.{name}"), secrets)
    seeded = simulator.seed_patients(PATIENTS)
    events: list[object] = []
    async with _served(simulator.app, name, real) as (base_url, transport):
        client = adapter.client(base_url=base_url, transport=transport, clock=clock, sources=sources,
                                secrets=secrets, listener=events.append)
        try:
            connector = client.connector
            read = await connector.read("Patient", seeded[0])
            results = await connector.search_all("Patient", {"_count": str(PAGE)})
            created: tuple[str, str | None] | None = None
            updated_version: str | None = None
            write_error: ConnectorError | None = None
            try:
                observation = await connector.create(_observation(seeded[0]))
                created = (observation.id, observation.version_id)
                updated = await connector.update(dict(read.body), if_match=read.version_id)
                updated_version = updated.version_id
            except ConnectorError as exc:
                write_error = exc
        finally:
            await client.connector.aclose()
            await client.breaker.aclose()
    return Outcome(read_id=read.id, seeded=seeded, found=[r.id for r in results.resources], pages=results.pages,
                   complete=results.complete, created=created, updated_version=updated_version,
                   write_error=write_error, tokens=sum(isinstance(e, TokenIssued) for e in events))


class _served:
    """(base URL, transport) for the connector: in-process, or uvicorn on an ephemeral loopback port."""

    def __init__(self, app: Any, name: str, real: bool) -> None:
        self._app, self._name, self._real = app, name, real
        self._server: Any = None

    async def __aenter__(self) -> tuple[str, httpx.AsyncBaseTransport]:
        if not self._real:
            return f"http://{self._name}.ehrlab.test", VirtualTransport(self._app)
        self._server = serve(self._app)
        return await self._server.__aenter__(), httpx.AsyncHTTPTransport()

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.__aexit__(*exc)


def _check(name: str, outcome: Outcome) -> None:
    assert outcome.read_id == outcome.seeded[0]
    assert outcome.found == outcome.seeded, "paging must return every patient once, in order"
    assert outcome.pages == -(-PATIENTS // PAGE)
    assert outcome.complete
    assert outcome.tokens == 1  # one token, reused for every call
    if name in WRITERS:
        assert outcome.write_error is None, repr(outcome.write_error)
        assert outcome.created is not None
        assert outcome.created[1] is not None
        assert outcome.updated_version is not None
    else:
        assert isinstance(outcome.write_error, Forbidden), repr(outcome.write_error)
        assert outcome.write_error.status == 403
        assert outcome.created is None


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_connector_reads_pages_and_writes_in_virtual_mode(name: str) -> None:
    clock = VirtualClock()
    _check(name, run_virtual(lambda: _exercise(name, clock, real=False)))


@pytest.mark.real_network
def test_connector_reads_pages_and_writes_over_real_sockets() -> None:
    async def main() -> dict[str, Outcome]:
        clock = RealClock()
        outcomes = await asyncio.gather(*(_exercise(name, clock, real=True) for name in sorted(VENDORS)))
        return dict(zip(sorted(VENDORS), outcomes, strict=True))

    for name, outcome in asyncio.run(main()).items():
        _check(name, outcome)
