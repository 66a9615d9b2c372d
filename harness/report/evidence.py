"""What the journal and the check results show about a scenario's impact: the evidence the severity table
(`harness.report.severity_rules`) classifies. Counts, names and record ids only.

A vendor is "down" over a streak of at least OUTAGE_MIN_OPS consecutive failed operations spanning at least
OUTAGE_MIN_S seconds (runbook 001 gives no number; a lone failure is an intermittent error, not an outage).
Data loss is counted in records (`harness.report.records`), not failed jobs.
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
    OperationEvent,
    ThrottledEvent,
    TokenFailedEvent,
)
from harness.report.records import RecordAccount, account
from harness.report.series import ScenarioSeries, buckets
from harness.report.text import failed_checks, is_lab_check

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


NO_RECORDS = RecordAccount(jobs=0, jobs_failed=0, jobs_unfinished=0, consent_refused=0, resynced=0, lost=())


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the journal and the checks show about a scenario's impact."""

    operations: int = 0
    failed: int = 0
    vendors: tuple[VendorImpact, ...] = ()
    all_down_s: float = 0.0  # seconds during which every vendor was down at once
    records: RecordAccount = NO_RECORDS
    consent_bypass: tuple[str, ...] = ()
    phi_exposure: tuple[str, ...] = ()
    lost_checks: tuple[str, ...] = ()
    breakers_opened: tuple[str, ...] = ()
    failover_exhausted: int = 0
    auth_failures: int = 0
    throttled: int = 0
    degraded: tuple[str, ...] = ()
    slow_buckets: int = 0
    failed_checks: tuple[str, ...] = ()  # of the system under test (the lab's own checks apart)
    errors: tuple[tuple[str, int], ...] = ()  # operation error class -> count, most common first

    @property
    def data_loss(self) -> bool:
        return bool(self.records.lost) or bool(self.lost_checks)


def _checks_about(checks: Sequence[CheckResult], *words: str) -> tuple[str, ...]:
    """Failed checks about a subject, by their kind and name (an invariant's default name carries it, as in
    `invariant[consent_never_bypassed]`)."""
    return tuple(c.name for c in failed_checks(checks)
                 if not is_lab_check(c) and any(w in f"{c.check} {c.name}".lower() for w in words))


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


def gather(events: Sequence[Event], series: ScenarioSeries, checks: Sequence[CheckResult]) -> Evidence:
    ops = [e for e in events if isinstance(e, OperationEvent)]
    errors = Counter(o.error or "unknown" for o in ops if not o.ok)
    vendors = _vendor_impacts(events, series)
    return Evidence(
        operations=len(ops), failed=sum(1 for o in ops if not o.ok), vendors=vendors, all_down_s=_all_down_s(vendors),
        records=account(events),
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
        failed_checks=tuple(c.name for c in failed_checks(checks) if not is_lab_check(c)),
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
