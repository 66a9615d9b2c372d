"""Hand-built journals for the SLA rule, band and invariant tests: small builders, one event kind each."""

from __future__ import annotations

from collections.abc import Iterable

from harness.checks import evaluate
from harness.checks.result import CheckResult
from harness.journal import (
    AuditMirrorEvent,
    ConsentCheckedEvent,
    Event,
    FaultStarted,
    FaultStopped,
    FhirSyncEvent,
    JobEvent,
    OperationEvent,
    QueueEvent,
    ReconciliationEvent,
    RequestEvent,
    ScenarioStarted,
)

SOURCE = "002_437ee203264dfa64.txt §8.4"


def start(duration: float) -> ScenarioStarted:
    return ScenarioStarted(t=0.0, scenario="s", file="s.yaml", seed=1, mode="virtual", duration_s=duration)


def journal(duration: float, *parts: Iterable[Event]) -> list[Event]:
    events: list[Event] = [start(duration)]
    for part in parts:
        events.extend(part)
    return sorted(events, key=lambda e: e.t)


def run(check: object, events: list[Event]) -> CheckResult:
    [result] = evaluate([check], events, SOURCE)
    return result


def times(begin: float, end: float, every: float) -> list[float]:
    out, t = [], begin
    while t < end:
        out.append(round(t, 6))
        t += every
    return out


def ops(begin: float, end: float, *, every: float = 1.0, fail_every: int = 0, ms: float = 50.0,
        vendor: str = "epic", operation: str = "read_patient") -> list[Event]:
    """One operation per `every` seconds; every `fail_every`th fails (0: none)."""
    out: list[Event] = []
    for i, t in enumerate(times(begin, end, every)):
        ok = not (fail_every and i % fail_every == 0)
        out.append(OperationEvent(t=t + ms / 1000, op_id=i, operation=operation, vendor=vendor, started=t,
                                  duration_ms=ms, ok=ok, error=None if ok else "ServerError"))
    return out


def requests(begin: float, end: float, *, every: float = 1.0, error_every: int = 0, status: int = 503,
             vendor: str = "medplum", ms: float = 20.0) -> list[Event]:
    return [RequestEvent(t=t, vendor=vendor, method="GET", path="/fhir/R4/Patient/pt_1",
                         status=status if error_every and i % error_every == 0 else 200, duration_ms=ms,
                         attempt=1, error=None, correlation_id=f"c{i}")
            for i, t in enumerate(times(begin, end, every))]


def consent(begin: float, end: float, per_min: float, status: str = "denied") -> list[Event]:
    return [ConsentCheckedEvent(t=t, org_id="org_1", status=status, data_class="LAB_RESULTS", purpose="CARE")
            for t in times(begin, end, 60.0 / per_min)]


def sync_failures(begin: float, end: float, per_min: float) -> list[Event]:
    return [FhirSyncEvent(t=t, kind="fhir_sync.failed", resource="observation", record_id=f"o{i}",
                          correlation_id=f"sync-{i}#1", error="ServerError")
            for i, t in enumerate(times(begin, end, 60.0 / per_min))]


def job(kind: str, t: float, job_id: str, **fields: object) -> JobEvent:
    return JobEvent(t=t, kind=kind, queue="fhir-sync", job_id=job_id, name=str(fields.pop("name", "observation-sync")),
                    **fields)  # type: ignore[arg-type]


def failed_jobs(n: int, at: float) -> list[Event]:
    out: list[Event] = []
    for i in range(n):
        jid = f"j{i}"
        out += [job("job.added", at, jid, attempts=1, delay_s=0.0), job("job.started", at + 1, jid, attempt=1),
                job("job.failed", at + 2, jid, attempts=1, error="ServerError")]
    return out


def waiting_jobs(n: int, at: float) -> list[Event]:
    return [job("job.added", at, f"w{i}", attempts=3, delay_s=0.0) for i in range(n)]


def job_errors(begin: float, end: float, per_min: float) -> list[Event]:
    return [job("job.retry", t, f"e{i}", attempt=1, delay_s=1.0, error="ServerError")
            for i, t in enumerate(times(begin, end, 60.0 / per_min))]


def completed_jobs(begin: float, end: float, every: float, seconds: float,
                   name: str = "observation-sync") -> list[Event]:
    out: list[Event] = []
    for i, t in enumerate(times(begin, end, every)):
        jid = f"d{i}"
        out += [job("job.added", t, jid, attempts=3, delay_s=0.0, name=name),
                job("job.started", t, jid, attempt=1, name=name),
                job("job.completed", t + seconds, jid, attempt=1, duration_ms=seconds * 1000, name=name)]
    return out


def store_unavailable(begin: float, end: float) -> list[Event]:
    return [QueueEvent(t=t, kind="queue.store_unavailable", queue="fhir-sync", worker="w1", operation="claim",
                       error="ConnectionError") for t in times(begin, end, 5.0)]


def reconciliation(at: float, *, not_synced: int = 0, stale: int = 0, errors: int = 0) -> list[Event]:
    return [ReconciliationEvent(t=at, encounters_not_synced=not_synced, encounters_stale=stale,
                                observations_not_synced=0, observations_stale=0, enqueued=0, errors=errors,
                                duration_ms=100.0)]


def audit_mirror(at: float, errors: int = 0) -> list[Event]:
    return [AuditMirrorEvent(t=at, fetched=10, mirrored=10 - errors, skipped=0, errors=errors)]


def fault(begin: float, end: float, target: str = "epic") -> list[Event]:
    return [FaultStarted(t=begin, fault_id="f1", fault="outage", target=target, params={}),
            FaultStopped(t=end, fault_id="f1", fault="outage", target=target)]
