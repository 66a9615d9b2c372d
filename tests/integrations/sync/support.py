"""The sync pipeline wired to an in-process Medplum simulator on the virtual clock, built as the lab builds
vendors (`harness.vendors.VENDORS["medplum"]`), with every integration event recorded, and the PHI checks
the tests share (independent of `integrations.sync.deid`, so a broken mapping cannot check itself)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from harness.clock import VirtualClock
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, VendorClient
from integrations.events import IntegrationEvent
from integrations.queue import JobQueue, QueueOptions, SqliteStore, Worker, WorkerOptions
from integrations.queue.store import JobStore
from integrations.sync import (
    EXPORT_DATA_CLASSES,
    AppDatabase,
    AppStore,
    AuditTrail,
    ConsentGate,
    ConsentStore,
    EncounterDetails,
    Exporter,
    Ingress,
    ObservationDetails,
    Reconciler,
    SyncService,
)
from simulators.transport import VirtualTransport

E = TypeVar("E")
ORG = "org_alpha"
OTHER_ORG = "org_beta"
BASE_URL = "http://medplum.ehrlab.test"

#: Strings that play PHI in the tests' records: none may leave the local store.
PHI = ("Jane Doe", "+1-555-0142", "12 Elm Street", "1984-03-07", "jane.doe@example.org")
NOTE = "Jane Doe, born 1984-03-07, +1-555-0142, 12 Elm Street, jane.doe@example.org"


def encounter(**changes: Any) -> EncounterDetails:
    base = EncounterDetails(status="finished", class_code="AMB", type_code="OFFICE_VISIT", reason_code="Z00.00",
                            notes=NOTE)
    return dataclasses.replace(base, **changes)


def observation(**changes: Any) -> ObservationDetails:
    base = ObservationDetails(code="8310-5", value=37.2, unit="Cel", notes=NOTE)
    return dataclasses.replace(base, **changes)


@dataclass
class Sent:
    method: str
    path: str
    if_match: str | None
    body: bytes


class Recorder(httpx.AsyncBaseTransport):
    """Records every request the connector sends (method, path, If-Match, body) on its way to the simulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(Sent(request.method, request.url.path, request.headers.get("if-match"), request.content))
        return await self.inner.handle_async_request(request)

    def puts(self, prefix: str) -> list[Sent]:
        return [s for s in self.sent if s.method == "PUT" and s.path.startswith(prefix)]


@dataclass
class SyncLab:
    clock: VirtualClock
    simulator: Any  # simulators.medplum.MedplumSimulator
    client: VendorClient
    admin: httpx.AsyncClient
    db: AppDatabase
    queue: JobQueue
    consents: ConsentStore
    gate: ConsentGate
    audit: AuditTrail
    store: AppStore
    sync: SyncService
    reconciler: Reconciler
    ingress: Ingress
    exporter: Exporter
    recorder: Recorder
    log: list[tuple[float, IntegrationEvent]] = field(default_factory=list)
    taps: list[Callable[[IntegrationEvent], None]] = field(default_factory=list)  # also get every event

    @property
    def events(self) -> list[IntegrationEvent]:
        return [event for _, event in self.log]

    def of(self, kind: type[E]) -> list[E]:
        return [event for _, event in self.log if isinstance(event, kind)]

    def patient(self, token: str, org_id: str = ORG, *, consent: bool = True) -> str:
        self.store.add_patient_token(token, org_id, f"s3://ehrlab-test/{token}.enc")
        if consent:
            self.consents.grant(token, org_id, EXPORT_DATA_CLASSES)
        return token

    def worker(self, **options: Any) -> Worker:
        options.setdefault("limiter", None)
        return Worker(self.queue, self.sync.handlers(), rng=random.Random(7), options=WorkerOptions(**options))

    async def until_idle(self, timeout_s: float = 3600.0) -> None:
        async with self.clock.timeout(timeout_s):
            while (await self.queue.stats()).pending:
                await self.clock.sleep(0.05)

    async def drain(self, timeout_s: float = 3600.0) -> None:
        """Run a worker until no job is pending."""
        async with self.worker():
            await self.until_idle(timeout_s)

    def medplum(self, resource_type: str) -> list[dict[str, Any]]:
        """What the simulator holds of a type (current versions)."""
        found: list[dict[str, Any]] = self.simulator.store.search(resource_type)
        return found

    def fhir_requests(self, method: str | None = None) -> list[tuple[str, str, int | None]]:
        """(method, path, status) of every FHIR request the simulator served (its admin request journal)."""
        return [(e.method, e.path, e.status) for e in self.simulator.journal
                if e.path.startswith("/fhir/R4") and (method is None or e.method == method)]

    async def advance(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def later(self, **delta: float) -> timedelta:
        return timedelta(**delta)


@asynccontextmanager
async def sync_lab(*, seed: int = 3, queue_options: QueueOptions | None = None, store: JobStore | None = None,
                   enqueue: bool = True) -> AsyncIterator[SyncLab]:
    """Build inside `run_virtual`. `enqueue` False: writes enqueue nothing (sync switched off)."""
    clock = VirtualClock()
    log: list[tuple[float, IntegrationEvent]] = []
    taps: list[Callable[[IntegrationEvent], None]] = []

    def listen(event: IntegrationEvent) -> None:
        log.append((clock.monotonic(), event))
        for tap in taps:
            tap(event)

    adapter = VENDORS["medplum"]
    sources = RandomSource(seed)
    secrets = LabSecrets.generate("medplum", sources.stream("secrets.medplum"))
    simulator = adapter.simulator(clock, sources.stream("simulator.medplum"), secrets)
    recorder = Recorder(VirtualTransport(simulator.app))
    client = adapter.client(base_url=BASE_URL, transport=recorder, clock=clock,
                            sources=sources, secrets=secrets, listener=listen)
    admin = httpx.AsyncClient(transport=VirtualTransport(simulator.app), base_url=BASE_URL,
                              headers={"Authorization": f"Bearer {secrets.admin_token}"})
    db = AppDatabase(":memory:", clock)
    queue = JobQueue(store or SqliteStore(":memory:", "fhir-sync"), clock, options=queue_options, listener=listen)
    consents = ConsentStore(db)
    gate = ConsentGate(consents, clock, listen)
    audit = AuditTrail(db, clock, listen)
    app_store = AppStore(db, clock, listen, queue if enqueue else None, gate=gate)
    lab = SyncLab(clock=clock, simulator=simulator, client=client, admin=admin, db=db, queue=queue,
                  consents=consents, gate=gate, audit=audit, store=app_store,
                  sync=SyncService(app_store, gate, audit, client.connector, clock, listen),
                  reconciler=Reconciler(app_store, queue, audit, clock, listen, consents=consents),
                  ingress=Ingress(app_store, audit, clock),
                  exporter=Exporter(app_store, gate, audit, client.connector, clock), recorder=recorder,
                  log=log, taps=taps)
    try:
        yield lab
    finally:
        await admin.aclose()
        await client.aclose()
        db.close()


def leaks(texts: Iterable[str], phi: Iterable[str] = PHI) -> list[str]:
    """The PHI strings found in any of `texts`."""
    joined = "\n".join(texts)
    return sorted({p for p in phi if p in joined})


def event_texts(events: Iterable[object]) -> list[str]:
    return [json.dumps(dataclasses.asdict(e), default=str) for e in events if dataclasses.is_dataclass(e)
            and not isinstance(e, type)]


def assert_no_phi(lab: SyncLab, phi: Iterable[str] = PHI) -> None:
    """No PHI in any event emitted, any audit row or anything stored in Medplum (rule 7 of the brief)."""
    phi = tuple(phi)
    assert lab.events or lab.audit.count(), "nothing was recorded: the check would be vacuous"
    assert leaks(event_texts(lab.events), phi) == []
    audit_rows = [json.dumps(r.to_json()) for r in lab.audit.search(limit=100_000)]
    assert leaks(audit_rows, phi) == []
    stored = [json.dumps(r) for t in ("Patient", "Encounter", "Observation", "AuditEvent") for r in lab.medplum(t)]
    assert leaks(stored, phi) == []


def patient_problems(patient: dict[str, Any], token: str) -> list[str]:
    """What a Patient in Medplum carries beyond the de-identified mapping of runbook 002 §3.1."""
    problems = [k for k in ("telecom", "address", "birthDate", "photo", "contact", "text") if patient.get(k)]
    if patient.get("name") != [{"text": f"Patient [{token[3:6].upper()}]", "family": "***", "given": ["***"]}]:
        problems.append("name")
    if patient.get("identifier") != [{"system": "https://holilabs.xyz/patient-token", "value": token}]:
        problems.append("identifier")
    payload = {"url": "https://holilabs.xyz/fhir/encrypted-payload",
               "valueReference": {"reference": f"s3://ehrlab-test/{token}.enc"}}  # SyncLab.patient's URI
    if patient.get("extension") != [payload]:
        problems.append("extension")
    return problems
