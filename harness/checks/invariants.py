"""The evaluator of `check: invariant`: dispatches to the invariant's function and cites its runbook
section (unless the scenario names its own `source`). An invariant with nothing to judge (`Verdict.empty`)
fails with "matched nothing: ..." unless `allow_empty: true`."""

from __future__ import annotations

from collections.abc import Callable

from harness.checks.context import CheckContext
from harness.checks.invariant_connector import breaker_transitions_legal, no_expired_or_revoked_credential
from harness.checks.invariant_jobs import jobs_accounted
from harness.checks.invariant_models import Invariant
from harness.checks.invariant_privacy import consent_never_bypassed, every_write_audited, no_phi_to_medplum
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.checks.verdict import Verdict

_M, _E = "002_437ee203264dfa64.txt", "000_030ea53f0735abf7.txt"
INVARIANTS: dict[str, tuple[Callable[[Invariant, CheckContext], Verdict], str]] = {
    "no_job_lost_or_duplicated": (jobs_accounted, f"{_M} §2.2"),
    "consent_never_bypassed": (consent_never_bypassed, f"{_M} §3.2"),
    "no_phi_to_medplum": (no_phi_to_medplum, f"{_M} §3.1"),
    "no_expired_or_revoked_credential": (no_expired_or_revoked_credential, f"{_M} §2.1"),
    "every_write_audited": (every_write_audited, f"{_M} §3.3"),
    "breaker_transitions_legal": (breaker_transitions_legal, f"{_E} §2"),
}


def invariant(spec: Invariant, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: what the invariant judged (`Verdict.matched`, see each invariant's module). Nothing: `Verdict.empty`."""
    fn, citation = INVARIANTS[spec.invariant]
    verdict = fn(spec, ctx)
    cited = spec.source or citation
    if verdict.empty is not None:
        return nothing(spec, why=verdict.empty, unit=verdict.unit, threshold=verdict.threshold, source=cited)
    return result(spec, passed=verdict.passed, observed=verdict.observed, unit=verdict.unit,
                  threshold=verdict.threshold, source=cited, detail=verdict.detail, matched=verdict.matched)
