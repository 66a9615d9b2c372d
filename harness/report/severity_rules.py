"""Runbook 001_96254f1eba941e65.txt, "Incident Classification", as a table: each row a condition on the
evidence (`harness.report.evidence`), the level it gives, the Impact Assessment answers it stands for and the
runbook's own words it encodes (its Severity Levels table: Impact and Examples columns; its flowchart:
"Services Available?", "Core Features Working?").

    P0  Critical  "Complete service outage or data loss": records lost, jobs lost or duplicated, "PHI
                  exposure", consent bypassed ("Data breach"), "All services unavailable"
    P1  High      "Major feature unavailable": a vendor down, a breaker OPEN, failover exhausted ("EMR
                  integration failing"), "Authentication failures"
    P2  Medium    "Minor feature degraded": "Intermittent errors", "Slow response times", throttling,
                  degraded reads, a failed check ("Non-critical feature broken")
    P3  Low       "Minimal impact": nothing above

The highest level of any row that holds decides (`harness.report.severity.classify`); its reasons are those
of every row that holds at that level. `tests/harness/report/test_severity_table.py` walks the table row by
row and checks that each row's words are in the runbook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from harness.report.evidence import SLOW_MEAN_MS, Evidence

Level = Literal["P0", "P1", "P2", "P3"]

DATA_LOSS = ("Data loss or breach? Yes",)
UNAVAILABLE = ("Services available? No",)
CORE_BROKEN = ("Services available? Partial", "Core features working? No")
CORE_PARTIAL = ("Services available? Partial", "Core features working? Partial")
CORE_WORKING = ("Services available? Yes", "Core features working? Yes")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    level: Level
    runbook: tuple[str, ...]  # 001's words this row encodes, verbatim
    condition: str  # what in the evidence, in words
    path: tuple[str, ...]  # the Impact Assessment answers it stands for
    reasons: Callable[[Evidence], list[str]]  # non-empty when the row holds


def _records_lost(ev: Evidence) -> list[str]:
    rec = ev.records
    if not rec.lost:
        return []
    after_job = len(rec.lost) - rec.unqueued - rec.unknown
    parts = [f"{after_job} never synced after their job failed for good"] if after_job else []
    parts += [f"{rec.unqueued} never enqueued nor synced"] if rec.unqueued else []
    parts += [f"{rec.unknown} failed job(s) no sync event ties to a record"] if rec.unknown else []
    resynced = f", {rec.resynced} of them synced later" if rec.resynced else ""
    return [f"data loss: {len(rec.lost)} record(s) lost ({'; '.join(parts)}); {rec.jobs_failed} of {rec.jobs} "
            f"jobs failed for good{resynced}"]


def _job_invariant(ev: Evidence) -> list[str]:
    return [f"data loss (jobs lost or duplicated): check {', '.join(ev.lost_checks)} failed"] if ev.lost_checks \
        else []


def _phi(ev: Evidence) -> list[str]:
    return [f"PHI exposure: check {', '.join(ev.phi_exposure)} failed"] if ev.phi_exposure else []


def _consent(ev: Evidence) -> list[str]:
    return [f"consent bypassed (compliance violation): check {', '.join(ev.consent_bypass)} failed"] \
        if ev.consent_bypass else []


def _all_down(ev: Evidence) -> list[str]:
    return [f"every vendor down at once: every operation failed for {ev.all_down_s:.1f} s"] if ev.all_down_s > 0 \
        else []


def _vendor_down(ev: Evidence) -> list[str]:
    return [f"{v.vendor} down: every operation failed for {v.down_s:.1f} s (EMR integration failing)"
            for v in ev.vendors if v.outages]


def _breaker_open(ev: Evidence) -> list[str]:
    return [f"breaker OPEN: {', '.join(ev.breakers_opened)} (calls refused)"] if ev.breakers_opened else []


def _failover(ev: Evidence) -> list[str]:
    return [f"failover exhausted {ev.failover_exhausted} time(s): no system could serve a read"] \
        if ev.failover_exhausted else []


def _auth(ev: Evidence) -> list[str]:
    return [f"{ev.auth_failures} authentication failure(s) (token refused, no credential left)"] \
        if ev.auth_failures else []


def _intermittent(ev: Evidence) -> list[str]:
    if not ev.failed:
        return []
    share = ev.failed / ev.operations * 100 if ev.operations else 0.0
    return [f"intermittent errors: {ev.failed} of {ev.operations} operations failed ({share:.1f}%)"]


def _slow(ev: Evidence) -> list[str]:
    return [f"slow responses: mean latency > {SLOW_MEAN_MS:g} ms in {ev.slow_buckets} bucket(s) (000 §7)"] \
        if ev.slow_buckets else []


def _throttled(ev: Evidence) -> list[str]:
    return [f"{ev.throttled} call(s) throttled by the client-side rate limiter"] if ev.throttled else []


def _degraded(ev: Evidence) -> list[str]:
    return [f"degraded to cached reads: {', '.join(ev.degraded)}"] if ev.degraded else []


def _failed_check(ev: Evidence) -> list[str]:
    return [f"failed check(s): {', '.join(ev.failed_checks)}"] if ev.failed_checks else []


def _minimal(ev: Evidence) -> list[str]:
    return ["no failed operation, no slow bucket, every check passed"]


RULES: tuple[Rule, ...] = (
    Rule("records-lost", "P0", ("Complete service outage or data loss",),
         "a record whose job failed for good (or that could not be enqueued) and that no later sync wrote; "
         "a record a later job, retry or reconciliation synced is not lost, a consent refusal is consent "
         "enforced (002 §3.2)", DATA_LOSS, _records_lost),
    Rule("jobs-lost-or-duplicated", "P0", ("Complete service outage or data loss",),
         "a failed check about lost or duplicated jobs (no_job_lost_or_duplicated)", DATA_LOSS, _job_invariant),
    Rule("phi-exposure", "P0", ("PHI exposure",), "a failed PHI check (no_phi_to_medplum)", DATA_LOSS, _phi),
    Rule("consent-bypass", "P0", ("Data breach", "Compliance violation"),
         "a failed consent check (consent_never_bypassed): data sent without consent", DATA_LOSS, _consent),
    Rule("all-services-unavailable", "P0", ("All services unavailable", "Services Available?"),
         "every vendor of the workload (more than one) down at the same time", UNAVAILABLE, _all_down),
    Rule("vendor-down", "P1", ("Major feature unavailable", "EMR integration failing"),
         "a vendor down: a streak of failed operations (evidence.OUTAGE_MIN_OPS, OUTAGE_MIN_S)", CORE_BROKEN,
         _vendor_down),
    Rule("breaker-open", "P1", ("Major feature unavailable", "EMR integration failing"),
         "a circuit breaker went OPEN: the integration refused calls", CORE_BROKEN, _breaker_open),
    Rule("failover-exhausted", "P1", ("Major feature unavailable", "EMR integration failing"),
         "a read no system of the failover could serve", CORE_BROKEN, _failover),
    Rule("authentication-failures", "P1", ("Authentication failures",),
         "a token request refused (400/401/403) or a credential refused with none left to try", CORE_BROKEN,
         _auth),
    Rule("intermittent-errors", "P2", ("Minor feature degraded", "Intermittent errors"),
         "some operations failed, no outage", CORE_PARTIAL, _intermittent),
    Rule("slow-responses", "P2", ("Slow response times",),
         f"a bucket whose mean latency is above {SLOW_MEAN_MS:g} ms (000 §7)", CORE_PARTIAL, _slow),
    Rule("throttled", "P2", ("Minor feature degraded",), "calls held back by the client-side rate limiter",
         CORE_PARTIAL, _throttled),
    Rule("degraded-reads", "P2", ("Minor feature degraded",), "reads fell back to the cached patient context",
         CORE_PARTIAL, _degraded),
    Rule("failed-check", "P2", ("Non-critical feature broken",),
         "a failed check of the system under test (the lab's own checks apart)", CORE_PARTIAL, _failed_check),
    Rule("minimal-impact", "P3", ("Minimal impact",), "nothing above", CORE_WORKING, _minimal),
)
