"""Incident severity of a scenario run, classified by runbook 001's "Incident Classification" (its Severity
Levels table and its Impact Assessment flow) from what the journal and the check results show.

    Data loss, PHI exposure or consent bypass?      yes -> P0 ("Complete service outage or data loss";
                                                            examples "Data breach", "PHI exposure")
    Services available?                             no  -> P0 (every vendor of the workload down at the
                                                            same time, with more than one vendor)
    Core features working?                          no  -> P1 (a vendor down, a breaker OPEN,
                                                            a breaker OPEN, failover exhausted, credentials
                                                            refused: 001's "EMR integration failing",
                                                            "Authentication failures")
                                                    partial -> P2 (some operations failed, slow responses
                                                            (mean > 500 ms in a bucket, 000 §7), throttling,
                                                            degraded reads, or a failed check)
                                                    yes -> P3 (minimal impact)

A vendor is "down" over a streak of at least OUTAGE_MIN_OPS consecutive failed operations spanning at
least OUTAGE_MIN_S seconds (001 gives no number; a lone failure is an intermittent error, not an outage). A
single upstream vendor down is 001's "EMR integration failing" (P1), not "All services unavailable": the
integration itself stayed up and failed fast behind its breaker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.result import CheckResult
from harness.journal import (
    BreakerEvent,
    CredentialRejectedEvent,
    DegradationActivatedEvent,
    Event,
    FailoverExhaustedEvent,
    FhirSyncEvent,
    OperationEvent,
    ThrottledEvent,
    TokenFailedEvent,
)
from harness.report.series import ScenarioSeries, buckets, final_job_states

CITATION = "001 §Incident Classification (Severity Levels; Impact Assessment)"
LABELS = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}
RESPONSE = {"P0": "< 15 minutes", "P1": "< 1 hour", "P2": "< 4 hours", "P3": "< 24 hours"}
SLOW_MEAN_MS = 500.0  # runbook 000 §7: average latency healthy below 500 ms
AUTH_REFUSED = (400, 401, 403)  # a token request refused; a 5xx or a network error is not an auth failure
OUTAGE_MIN_S = 10.0
OUTAGE_MIN_OPS = 3


@dataclass(frozen=True, slots=True)
class VendorImpact:
    vendor: str
    operations: int
    failed: int
    worst_rate: float | None  # the lowest success rate of a bucket with operations
    outages: tuple[tuple[float, float], ...]  # (from, to): streaks of failed operations (see OUTAGE_MIN_S)

    @property
    def down_s(self) -> float:
        return sum(end - start for start, end in self.outages)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the journal and the checks show about a scenario's impact; counts and names only."""

    operations: int
    failed: int
    vendors: tuple[VendorImpact, ...]
    all_down_s: float  # seconds during which every vendor was down at once
    jobs: int
    jobs_failed: int
    jobs_unfinished: int
    consent_bypass: tuple[str, ...]
    phi_exposure: tuple[str, ...]
    lost_checks: tuple[str, ...]
    breakers_opened: tuple[str, ...]
    failover_exhausted: int
    auth_failures: int
    throttled: int
    degraded: tuple[str, ...]
    slow_buckets: int
    failed_checks: tuple[str, ...]
    errors: tuple[tuple[str, int], ...]  # operation error class -> count, most common first

    @property
    def data_loss(self) -> bool:
        return self.jobs_failed > 0 or bool(self.lost_checks)


@dataclass(frozen=True, slots=True)
class Severity:
    level: str  # P0..P3
    path: tuple[str, ...]  # the Impact Assessment answers that led to it
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.level} - {LABELS[self.level]}"

    @property
    def response_time(self) -> str:
        return RESPONSE[self.level]


def _checks_about(checks: Sequence[CheckResult], *words: str) -> tuple[str, ...]:
    """Failed checks about a subject, by their kind and name (an invariant's default name carries it, as in
    `invariant[consent_never_bypassed]`)."""
    return tuple(c.name for c in checks
                 if not c.passed and any(w in f"{c.check} {c.name}".lower() for w in words))


def outages(ops: Sequence[OperationEvent]) -> tuple[tuple[float, float], ...]:
    """Streaks of consecutive failed operations (by end time) long enough to call the vendor down."""
    found: list[tuple[float, float]] = []
    streak: list[float] = []
    for operation in [*sorted(ops, key=lambda o: o.t), None]:
        if operation is not None and not operation.ok:
            streak.append(operation.t)
            continue
        if len(streak) >= OUTAGE_MIN_OPS and streak[-1] - streak[0] >= OUTAGE_MIN_S:
            found.append((streak[0], streak[-1]))
        streak = []
    return tuple(found)


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b if min(e1, e2) > max(s1, s2)]


def _vendor_impacts(events: Sequence[Event], series: ScenarioSeries) -> tuple[VendorImpact, ...]:
    out = []
    for vendor in series.vendors:
        ops = [e for e in events if isinstance(e, OperationEvent) and e.vendor == vendor]
        per_bucket = [b for b in buckets(ops, series.end_s, series.bucket_s) if b.total]
        rates = [b.success_rate for b in per_bucket if b.success_rate is not None]
        out.append(VendorImpact(vendor=vendor, operations=len(ops), failed=sum(1 for o in ops if not o.ok),
                                worst_rate=min(rates) if rates else None, outages=outages(ops)))
    return tuple(out)


def _all_down_s(vendors: Sequence[VendorImpact]) -> float:
    if len(vendors) < 2:
        return 0.0
    common: list[tuple[float, float]] = list(vendors[0].outages)
    for vendor in vendors[1:]:
        common = _overlap(common, vendor.outages)
    return sum(end - start for start, end in common)


def _refused_for_consent(events: Sequence[Event]) -> set[str]:
    """Jobs the sync worker failed on purpose because consent was refused (002 §3.2: not retried): consent
    enforced, not data lost. The sync's correlation id is `sync-<job id>#<attempt>`."""
    refused = set()
    for event in events:
        if isinstance(event, FhirSyncEvent) and event.kind == "fhir_sync.failed" and event.error == "ConsentDenied":
            correlation = event.correlation_id or ""
            if correlation.startswith("sync-"):
                refused.add(correlation.removeprefix("sync-").rsplit("#", 1)[0])
    return refused


def gather(events: Sequence[Event], series: ScenarioSeries, checks: Sequence[CheckResult]) -> Evidence:
    ops = [e for e in events if isinstance(e, OperationEvent)]
    refused = _refused_for_consent(events)
    jobs = {key: state for key, state in final_job_states(events).items() if key[1] not in refused}
    errors = Counter(o.error or "unknown" for o in ops if not o.ok)
    vendors = _vendor_impacts(events, series)
    return Evidence(
        operations=len(ops), failed=sum(1 for o in ops if not o.ok), vendors=vendors, all_down_s=_all_down_s(vendors),
        jobs=len(jobs), jobs_failed=sum(1 for s in jobs.values() if s == "failed"),
        jobs_unfinished=sum(1 for s in jobs.values() if s in ("waiting", "delayed", "active")),
        consent_bypass=_checks_about(checks, "consent"), phi_exposure=_checks_about(checks, "phi"),
        lost_checks=_checks_about(checks, "lost", "data_loss"),
        breakers_opened=tuple(sorted({e.breaker for e in events if isinstance(e, BreakerEvent)
                                      and e.to_state == "OPEN"})),
        failover_exhausted=sum(1 for e in events if isinstance(e, FailoverExhaustedEvent)),
        auth_failures=sum(1 for e in events if (isinstance(e, TokenFailedEvent) and e.status in AUTH_REFUSED)
                          or (isinstance(e, CredentialRejectedEvent) and not e.fallback)),
        throttled=sum(1 for e in events if isinstance(e, ThrottledEvent)),
        degraded=tuple(sorted({e.vendor for e in events if isinstance(e, DegradationActivatedEvent)})),
        slow_buckets=sum(1 for b in series.buckets if b.mean_ms is not None and b.mean_ms > SLOW_MEAN_MS),
        failed_checks=tuple(c.name for c in checks if not c.passed),
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _p0_reasons(ev: Evidence) -> list[str]:
    reasons = []
    if ev.jobs_failed:
        reasons.append(f"data loss: {ev.jobs_failed} of {ev.jobs} jobs failed for good")
    if ev.lost_checks:
        reasons.append(f"data loss (jobs lost or duplicated): check {', '.join(ev.lost_checks)} failed")
    if ev.phi_exposure:
        reasons.append(f"PHI exposure: check {', '.join(ev.phi_exposure)} failed")
    if ev.consent_bypass:
        reasons.append(f"consent bypassed (compliance violation): check {', '.join(ev.consent_bypass)} failed")
    return reasons


def _p1_reasons(ev: Evidence) -> list[str]:
    reasons = [f"{v.vendor} down: every operation failed for {v.down_s:.1f} s (EMR integration failing)"
               for v in ev.vendors if v.outages]
    if ev.breakers_opened:
        reasons.append(f"breaker OPEN: {', '.join(ev.breakers_opened)} (calls refused)")
    if ev.failover_exhausted:
        reasons.append(f"failover exhausted {ev.failover_exhausted} time(s): no system could serve a read")
    if ev.auth_failures:
        reasons.append(f"{ev.auth_failures} authentication failure(s) (token refused, no credential left)")
    return reasons


def _p2_reasons(ev: Evidence) -> list[str]:
    reasons = []
    if ev.failed:
        share = ev.failed / ev.operations * 100 if ev.operations else 0.0
        reasons.append(f"intermittent errors: {ev.failed} of {ev.operations} operations failed ({share:.1f}%)")
    if ev.slow_buckets:
        reasons.append(f"slow responses: mean latency > {SLOW_MEAN_MS:g} ms in {ev.slow_buckets} bucket(s) (000 §7)")
    if ev.throttled:
        reasons.append(f"{ev.throttled} call(s) throttled by the client-side rate limiter")
    if ev.degraded:
        reasons.append(f"degraded to cached reads: {', '.join(ev.degraded)}")
    if ev.failed_checks:
        reasons.append(f"failed check(s): {', '.join(ev.failed_checks)}")
    return reasons


def classify(ev: Evidence) -> Severity:
    """001's flow over the evidence; the first question answered 'no' decides."""
    reasons = _p0_reasons(ev)
    if reasons:
        return Severity("P0", ("Data loss or breach? Yes",), tuple(reasons))
    if ev.all_down_s > 0:
        return Severity("P0", ("Services available? No",),
                        (f"every vendor down at once: every operation failed for {ev.all_down_s:.1f} s",))
    reasons = _p1_reasons(ev)
    if reasons:
        return Severity("P1", ("Services available? Partial", "Core features working? No"), tuple(reasons))
    reasons = _p2_reasons(ev)
    if reasons:
        return Severity("P2", ("Services available? Partial", "Core features working? Partial"), tuple(reasons))
    return Severity("P3", ("Services available? Yes", "Core features working? Yes"),
                    ("no failed operation, no slow bucket, every check passed",))
