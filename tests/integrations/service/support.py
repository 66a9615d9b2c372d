"""The integration service in process: a Medplum simulator, the service wired exactly as `ehrlab service`
wires it (`harness.service_cmd.wire_service`), on the virtual clock, and an httpx client on the app's
ASGI transport. Build inside `run_virtual`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.clock import VirtualClock
from harness.rng import RandomSource
from harness.service_cmd import DEMO_ORG, ServiceSecrets, Wired, wire_service
from harness.vendors import VENDORS, LabSecrets
from integrations.queue import JobQueue, WorkerOptions
from integrations.sync import EXPORT_DATA_CLASSES
from simulators.medplum.app import MedplumSimulator
from simulators.transport import VirtualTransport

OPERATOR = "operator-token-for-tests-0123456789abcdef"
CRON = "cron-secret-for-tests-0123456789abcdef0123"
API_KEY = "api-key-for-tests-0123456789abcdef01234567"
OTHER_ORG = "org_other"
SECRETS = ServiceSecrets(operator_token=OPERATOR, cron_secret=CRON, api_key=API_KEY)

OP = {"Authorization": f"Bearer {OPERATOR}"}
CRON_HEADERS = {"X-Cron-Secret": CRON}


def caller(org: str = DEMO_ORG, user: str | None = None, role: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Org-ID": org}
    if user is not None:
        headers["X-User-ID"] = user
    if role is not None:
        headers["X-Role"] = role
    return headers


@dataclass(frozen=True)
class Written:
    encounters: int
    observations: int
    audit_events: int
    reconciliation_runs: int


@dataclass
class Svc:
    wired: Wired
    http: httpx.AsyncClient
    simulator: MedplumSimulator
    clock: VirtualClock

    @property
    def queue(self) -> JobQueue:
        return self.wired.components.queue

    def patient(self, token: str, org: str = DEMO_ORG, *, consent: bool = True) -> str:
        """A known patient token (with a CARE consent for every data class unless `consent` is False)."""
        self.wired.store.add_patient_token(token, org, f"s3://test/{token}.enc")
        if consent:
            self.wired.consents.grant(token, org, EXPORT_DATA_CLASSES)
        return token

    def written(self) -> Written:
        """What the service has written: local records, audit rows, reconciliation runs."""
        db = self.wired.store.db.connection

        def count(table: str) -> int:
            (n,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            return int(n)

        return Written(count("encounters"), count("observations"), count("audit_events"),
                       count("reconciliation_runs"))

    async def jobs(self) -> int:
        stats = await self.queue.stats()
        return stats.pending + stats.completed + stats.failed

    async def until_idle(self, timeout_s: float = 600.0) -> None:
        """Wait (virtual time) until the queue has nothing pending."""
        async with self.clock.timeout(timeout_s):
            while (await self.queue.stats()).pending:
                await self.clock.sleep(0.05)


@asynccontextmanager
async def service(tmp_path: Path, *, seed: int = 5, start_worker: bool = True,
                  patients: int = 0) -> AsyncIterator[Svc]:
    clock = VirtualClock()
    sources = RandomSource(seed)
    lab_secrets = LabSecrets.generate("medplum", sources.stream("secrets.medplum"))
    simulator = VENDORS["medplum"].simulator(clock, sources.stream("simulator.medplum"), lab_secrets)
    assert isinstance(simulator, MedplumSimulator)
    if patients:
        simulator.seed_patients(patients)
    async with wire_service(clock=clock, sources=sources, medplum_url="http://medplum.ehrlab.test",
                            lab_secrets=lab_secrets, transport=VirtualTransport(simulator.app),
                            db_path=tmp_path / "app.db", service_secrets=SECRETS, start_worker=start_worker,
                            start_monitor=False, keep_events=True,
                            worker_options=WorkerOptions(limiter=None, poll_interval_s=0.05)) as wired:
        transport = httpx.ASGITransport(app=wired.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
            yield Svc(wired=wired, http=http, simulator=simulator, clock=clock)


def error_body(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    """Assert a 4xx/5xx with the service's JSON error body; return it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert body["success"] is False
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body
