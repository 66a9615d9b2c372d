"""Hand-built journals and run summaries for the report tests: every number is chosen so the expected series
can be worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.result import CheckResult
from harness.journal import (
    BreakerEvent,
    CheckFailed,
    CheckPassed,
    Event,
    FaultStarted,
    FaultStopped,
    FhirSyncEvent,
    JobEvent,
    OperationEvent,
    ScenarioEnded,
    ScenarioStarted,
)
from harness.report.models import RunSummary, ScenarioSummary

RUN_ID = "20260101T120000Z-virtual-seed7"


def op(t: float, ok: bool = True, duration_ms: float = 10.0, vendor: str = "medplum", op_id: int = 0) -> OperationEvent:
    return OperationEvent(t=t, op_id=op_id, operation="read_patient", vendor=vendor, started=max(0.0, t - 0.01),
                          duration_ms=duration_ms, ok=ok, error=None if ok else "ServerError")


def breaker(t: float, src: str, dst: str, name: str = "medplum") -> BreakerEvent:
    return BreakerEvent(t=t, breaker=name, from_state=src, to_state=dst, failure_rate=None, calls=0)


def job(t: float, kind: str, job_id: str, **fields: object) -> JobEvent:
    return JobEvent.model_validate({"t": t, "kind": kind, "queue": "sync", "job_id": job_id, "name": "sync",
                                    **fields})


def check(name: str, passed: bool = True, kind: str | None = None) -> CheckResult:
    return CheckResult(name=name, check=kind or name.split("[")[0], verdict="pass" if passed else "fail",
                       observed=1.0, unit="s", threshold="<= 30s", source="000_x.txt §2 (test)",
                       detail="a detail")


def outage_journal(name: str = "outage", checks: Sequence[CheckResult] = ()) -> list[Event]:
    """120 s; fault f1 (outage on medplum) 30 s to 60 s; breaker OPEN 32 s, HALF_OPEN 92 s, CLOSED 93 s;
    one operation per second, failing from 30 s up to 60 s."""
    events: list[Event] = [ScenarioStarted(t=0.0, scenario=name, file=f"scenarios/{name}.yaml", seed=7,
                                           mode="virtual", duration_s=120.0)]
    for second in range(120):
        t = float(second) + 0.5
        if second == 30:
            events.append(FaultStarted(t=30.0, fault_id="f1", fault="outage", target="medplum",
                                       params={"status": 503}))
        if second == 32:
            events.append(breaker(32.0, "CLOSED", "OPEN"))
        if second == 60:
            events.append(FaultStopped(t=60.0, fault_id="f1", fault="outage", target="medplum"))
        if second == 92:
            events.append(breaker(92.0, "OPEN", "HALF_OPEN"))
        if second == 93:
            events.append(breaker(93.0, "HALF_OPEN", "CLOSED"))
        events.append(op(t, ok=not 30 <= second < 60, op_id=second))
    events.append(ScenarioEnded(t=120.0, scenario=name, operations=120, in_flight_cancelled=0))
    for c in checks:
        cls = CheckPassed if c.passed else CheckFailed
        events.append(cls(t=120.0, check=c.name, observed=c.observed, threshold=c.threshold))
    return events


def summary_for(scenarios: Sequence[tuple[str, Sequence[CheckResult]]], run_id: str = RUN_ID) -> RunSummary:
    summaries = [ScenarioSummary(name=name, file=f"scenarios/{name}.yaml", description=f"The {name} scenario.",
                                 runbook=["000_x.txt §2 (test)"],
                                 verdict="pass" if all(c.passed for c in checks) else "fail", duration_s=120.0,
                                 operations=120, operations_failed=30, checks=list(checks))
                 for name, checks in scenarios]
    return RunSummary(run_id=run_id, started_at=run_id.split("-")[0], seed=7, mode="virtual", time_scale=1.0,
                      verdict="pass" if all(s.verdict == "pass" for s in summaries) else "fail",
                      replay="ehrlab run scenarios/outage.yaml --mode virtual --seed 7", scenarios=summaries)


def scenario(body: Sequence[Event], name: str = "s", duration_s: float = 120.0, ended: bool = True) -> list[Event]:
    """A scenario's journal around `body` (sorted by time, stable); `ended=False` leaves it cut short."""
    events: list[Event] = [ScenarioStarted(t=0.0, scenario=name, file=f"{name}.yaml", seed=7, mode="virtual",
                                           duration_s=duration_s)]
    events += sorted(body, key=lambda e: e.t)
    if ended:
        events.append(ScenarioEnded(t=duration_s, scenario=name, operations=0, in_flight_cancelled=0))
    return events


def sync_job(t: float, job_id: str, record_id: str, *, ok: bool = True, resource: str = "encounter",
             error: str = "ServerError") -> list[Event]:
    """One sync job of `integrations.sync`, as the journal shows it: added, started, the record's sync (its
    correlation id `sync-<job id>#1`), completed or failed for good."""
    correlation = f"sync-{job_id}#1"
    events: list[Event] = [job(t, "job.added", job_id, delay_s=0.0, attempts=1),
                           job(t + 0.1, "job.started", job_id, attempt=1, worker="w")]
    if ok:
        return [*events, FhirSyncEvent(t=t + 0.2, kind="fhir_sync.completed", resource=resource, record_id=record_id,
                                       correlation_id=correlation, created=True),
                job(t + 0.2, "job.completed", job_id, attempt=1, worker="w", duration_ms=100.0)]
    return [*events, FhirSyncEvent(t=t + 0.2, kind="fhir_sync.failed", resource=resource, record_id=record_id,
                                   correlation_id=correlation, error=error),
            job(t + 0.2, "job.failed", job_id, attempts=1, error=error, worker="w")]
