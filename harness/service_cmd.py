"""`ehrlab service [--port P] [--seed N] [--db PATH]`: the integration service against a Medplum simulator.

Starts a Medplum simulator on loopback (as `ehrlab serve medplum` does), wires the connector, the
resilience layer (monitor, flags, fallback), the job queue (SQLite) and its worker, the sync pipeline and
the audit mirror (Medplum's AuditEvents into the application database) into
`integrations.service.create_service`, serves it on loopback and prints its URL, the operator token, the
cron secret and an API key for the demo organisation, once, on stdout (as `ehrlab serve` prints its
credentials). Then serves until Ctrl-C or SIGTERM, which stop it in order (exit 0).

Demo data (three patients with consents, encounters, observations) is seeded into a fresh database only: served
again with the same `--db`, the service keeps its data and adds no demo patients.

The seed decides the simulator's data and credentials (printed, so a session can be served again with
`--seed`); the service's own secrets are drawn from the operating system's CSPRNG every time: a secret
anyone could recompute from a printed seed would be none. `--db PATH` keeps the application database at
PATH and the queue beside it (PATH + "-queue"); by default both live in a temporary folder removed on exit.

`--medplum-url URL` and `--redis URL` name loopback hosts unless `--allow-remote` (`harness.guard`, the lab's one
loopback guard; docker-compose.yml passes it: its neighbours are other containers). `--medplum-url URL` uses a
Medplum simulator already running there (`ehrlab serve medplum --seed N`, possibly
behind a Toxiproxy proxy) instead of starting one: the same `--seed` gives the same credentials, since both
derive them with `LabSecrets.generate` from the seed's `secrets.medplum` stream. Loopback only, unless every
interface is asked for explicitly (`--host 0.0.0.0` with `--allow-any-host` or `EHRLAB_CONTAINER=1`, as
`ehrlab serve`): docker-compose.yml runs the service in its own container. `--redis URL` puts the job queue
on Redis (`RedisStore`, for multi-process deployments) instead of the SQLite file beside the database.

`wire_service` is the one wiring path: the command uses it with the real clock and sockets, the tests
with the virtual clock and the in-process transport.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI

from harness.clock import RealClock
from harness.errors import UsageError
from harness.guard import any_host_allowed, check_bind, check_target
from harness.rng import RandomSource, random_token
from harness.shutdown import run_until_stopped
from harness.vendors import VENDORS, LabSecrets, VendorClient
from integrations.clock import Clock
from integrations.events import EventListener, IntegrationEvent, ignore_event
from integrations.queue import JobQueue, JobStore, SqliteStore, Worker, WorkerOptions
from integrations.queue.redis_store import RedisStore
from integrations.resilience import FeatureFlags, ProviderMonitor, ResilientFhirClient, search_probe, write_flag
from integrations.service import ApiClient, ServiceComponents, ServiceConfig, ServiceMetrics, create_service, fan_out
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
from integrations.sync.audit_mirror import AuditMirror
from simulators.server import serve

VENDOR = "medplum"
DEMO_ORG = "org_demo"
DEMO_PATIENTS = 3
QUEUE = "fhir-sync"


@dataclass(frozen=True, slots=True)
class ServiceSecrets:
    """The service's own secrets (never journaled, never logged; printed once by the command)."""

    operator_token: str = field(repr=False)
    cron_secret: str = field(repr=False)
    api_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> ServiceSecrets:
        return cls(operator_token=secrets.token_hex(32), cron_secret=secrets.token_hex(32),
                   api_key=secrets.token_hex(32))

    def config(self, org_ids: frozenset[str] = frozenset({DEMO_ORG})) -> ServiceConfig:
        return ServiceConfig(operator_token=self.operator_token, cron_secret=self.cron_secret,
                             api_keys={self.api_key: ApiClient(name="demo-ehr", org_ids=org_ids)}, vendor=VENDOR,
                             queue_name=QUEUE)


@dataclass(slots=True)
class Wired:
    config: ServiceConfig
    components: ServiceComponents
    app: FastAPI
    vendor_client: VendorClient
    monitor: ProviderMonitor
    worker: Worker | None
    events: list[IntegrationEvent]
    consents: ConsentStore
    store: AppStore
    sync: SyncService


@asynccontextmanager
async def wire_service(*, clock: Clock, sources: RandomSource, medplum_url: str, lab_secrets: LabSecrets,
                       transport: httpx.AsyncBaseTransport, db_path: Path, service_secrets: ServiceSecrets,
                       listener: EventListener = ignore_event, start_worker: bool = True,
                       start_monitor: bool = True, worker_options: WorkerOptions | None = None,
                       keep_events: bool = False, vendor_client: VendorClient | None = None,
                       redis_url: str | None = None) -> AsyncIterator[Wired]:
    """Build and start everything (inside the running loop); stop and close it all on exit.

    `vendor_client`: Medplum's client when the caller already has one (the lab's, so one breaker and one token
    cache serve the vendor); its owner closes it. Without it one is built here from `lab_secrets`."""
    events: list[IntegrationEvent] = []
    metrics = ServiceMetrics()
    listen = fan_out(metrics.observe, listener, events.append) if keep_events else fan_out(metrics.observe, listener)
    async with AsyncExitStack() as stack:
        if vendor_client is None:
            vendor_client = VENDORS[VENDOR].client(base_url=medplum_url, transport=transport, clock=clock,
                                                   sources=sources, secrets=lab_secrets, listener=listen)
            stack.push_async_callback(vendor_client.aclose)
        connector = vendor_client.connector
        flags = FeatureFlags.for_vendors([VENDOR], listener=listen)
        monitor = ProviderMonitor(VENDOR, clock, breaker=vendor_client.breaker, probe=search_probe(connector),
                                  listener=listen)
        client = ResilientFhirClient(connector, clock=clock, flags=flags, monitor=monitor, listener=listen)
        job_store: JobStore = (RedisStore.connect(redis_url, QUEUE) if redis_url is not None
                               else SqliteStore(db_path.with_name(db_path.name + "-queue"), QUEUE))
        queue = JobQueue(job_store, clock, listener=listen)
        stack.push_async_callback(queue.close)
        db = AppDatabase(db_path, clock)
        stack.callback(db.close)
        consents = ConsentStore(db)
        gate = ConsentGate(consents, clock, listen)
        audit = AuditTrail(db, clock, listen)
        # Sync follows Medplum's write switch: while it is off (an emergency shutdown), writes are stored
        # and not queued; the reconciliation after recovery finds them (runbook 000 §8, 002 §2.4).
        store = AppStore(db, clock, listen, queue, gate=gate, sync_enabled=lambda: flags.is_enabled(write_flag(VENDOR)))
        sync = SyncService(store, gate, audit, connector, clock, listen)
        components = ServiceComponents(
            clock=clock, queue=queue, flags=flags, metrics=metrics, providers={VENDOR: client}, database=db,
            store=store, consent=gate, audit=audit,
            reconciler=Reconciler(store, queue, audit, clock, listen, consents=consents),
            ingress=Ingress(store, audit, clock), exporter=Exporter(store, gate, audit, connector, clock),
            audit_mirror=AuditMirror(db, connector, clock, listen, audit=audit))
        config = service_secrets.config()
        app = create_service(config, components)
        worker = None
        if start_worker:
            worker = Worker(queue, sync.handlers(), rng=sources.stream("service.worker"), options=worker_options)
            worker.start()
            stack.push_async_callback(worker.close, 5.0)
        if start_monitor:
            monitor.start()
            stack.push_async_callback(monitor.stop)
        components.startup.mark_complete()
        yield Wired(config=config, components=components, app=app, vendor_client=vendor_client, monitor=monitor,
                    worker=worker, events=events, consents=consents, store=store, sync=sync)


async def seed_demo(wired: Wired, rng: random.Random, patients: int = DEMO_PATIENTS) -> list[str]:
    """Demo data in the demo organisation: patient tokens with a CARE consent for every data class, each
    with an encounter and a temperature observation (their sync jobs go to the simulator at once). The
    seed decides the tokens; a token already in the database (`--db` served again) is left as it is."""
    tokens = []
    for _ in range(patients):
        token = "pt_" + random_token(rng, 10)
        tokens.append(token)
        if wired.store.patient_token(token) is not None:
            continue
        wired.store.add_patient_token(token, DEMO_ORG, f"s3://ehrlab-demo/{token}.enc")
        wired.consents.grant(token, DEMO_ORG, EXPORT_DATA_CLASSES)
        await wired.store.create_encounter(DEMO_ORG, token, EncounterDetails(status="finished", class_code="AMB"))
        await wired.store.create_observation(DEMO_ORG, token, ObservationDetails(
            code="8310-5", value=round(rng.uniform(36.1, 38.0), 1), unit="Cel"))
    return tokens


def demo_patients(wired: Wired) -> list[str]:
    """The demo organisation's patient tokens already in the database, in the order they were added."""
    rows = wired.store.db.connection.execute(
        "SELECT token FROM patient_tokens WHERE org_id = ? ORDER BY rowid", (DEMO_ORG,)).fetchall()
    return [str(row[0]) for row in rows]


def describe(*, service_url: str, medplum_url: str, seed: int, service_secrets: ServiceSecrets, db_path: Path,
             patients: list[str]) -> str:
    return "\n".join([
        f"ehrlab integration service (seed {seed}); Ctrl-C stops it",
        "",
        f"  service URL     {service_url}",
        f"  health          {service_url}/health",
        f"  operator token  {service_secrets.operator_token}   (Authorization: Bearer ... on /fhir/admin, "
        "/api/admin, /metrics)",
        f"  cron secret     {service_secrets.cron_secret}   (X-Cron-Secret: ... on /fhir/admin/*/cron)",
        f"  API key         {service_secrets.api_key}   (Authorization: Bearer ... with X-Org-ID: {DEMO_ORG} "
        "on /fhir/inbound, /fhir/export)",
        f"  Medplum         {medplum_url}  (simulator)",
        f"  database        {db_path}",
        f"  demo patients   {', '.join(patients) or 'none'}  ({DEMO_ORG}, CARE consent: try "
        "/fhir/export/patient/<token>/$everything with X-User-ID and X-Role: ADMIN)",
        "",
    ])


async def serve_service(*, host: str, port: int, seed: int, db: Path | None,
                        ready: asyncio.Event | None = None, medplum_url: str | None = None,
                        any_host: bool = False, redis_url: str | None = None) -> None:
    """Serve until cancelled."""
    clock = RealClock()
    sources = RandomSource(seed)
    service_secrets = ServiceSecrets.generate()
    async with AsyncExitStack() as stack:
        if db is None:
            db_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ehrlab-service-"))) / "app.db"
        else:
            db_path = db
        fresh = not db_path.exists() or db_path.stat().st_size == 0  # before the database opens (and creates) it
        lab_secrets = LabSecrets.generate(VENDOR, sources.stream(f"secrets.{VENDOR}"))
        if medplum_url is None:
            simulator = VENDORS[VENDOR].simulator(clock, sources.stream(f"simulator.{VENDOR}"), lab_secrets)
            simulator.seed_patients(5)
            medplum_url = await stack.enter_async_context(serve(simulator.app, port=0))  # loopback, always
        transport = await stack.enter_async_context(httpx.AsyncHTTPTransport())
        wired = await stack.enter_async_context(wire_service(
            clock=clock, sources=sources, medplum_url=medplum_url, lab_secrets=lab_secrets, transport=transport,
            db_path=db_path, service_secrets=service_secrets, redis_url=redis_url))
        try:
            service_url = await stack.enter_async_context(serve(wired.app, host=host, port=port, any_host=any_host))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot serve on {host}:{port}: {exc}") from None
        # Demo data goes into a fresh database only: served again with the same --db, the service keeps what is
        # there (its demo patients included) and adds none
        patients = (await seed_demo(wired, sources.stream("service.demo")) if fresh
                    else demo_patients(wired))
        print(describe(service_url=service_url, medplum_url=medplum_url, seed=seed, service_secrets=service_secrets,
                       db_path=db_path, patients=patients), flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()


def run(*, host: str, port: int, seed: int | None, db: Path | None, medplum_url: str | None = None,
        allow_any_host: bool = False, redis_url: str | None = None, allow_remote: bool = False) -> int:
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    any_host = any_host_allowed(allow_any_host)
    check_bind(host, any_host=any_host)
    if medplum_url is not None:
        try:
            parsed = httpx.URL(medplum_url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise UsageError(f"--medplum-url must be a URL like http://medplum:8000, not {medplum_url!r}")
        medplum_url = medplum_url.rstrip("/")
        check_target("--medplum-url", medplum_url, allow_remote=allow_remote)  # the loopback guard
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://")):
        raise UsageError(f"--redis must be a URL like redis://redis:6379/0, not {redis_url!r}")
    if redis_url is not None:
        check_target("--redis", redis_url, allow_remote=allow_remote)
    if db is not None and (db.is_dir() or not db.parent.is_dir()):
        raise UsageError(f"--db {db}: must be a file path in an existing directory")
    chosen = seed if seed is not None else random.SystemRandom().getrandbits(31)
    # Ctrl-C and SIGTERM alike: the worker and the servers stop, the databases are closed (a temporary one
    # removed with its folder), then exit 0
    if run_until_stopped(serve_service(host=host, port=port, seed=chosen, db=db, medplum_url=medplum_url,
                                       any_host=any_host, redis_url=redis_url)) is not None:
        print("stopped", flush=True)
    return 0
