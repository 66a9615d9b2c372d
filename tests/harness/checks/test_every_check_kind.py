"""Every check kind over three hand-built journals: one where it passes, one where it fails on what it judged,
and one where it matched nothing (it fails "matched nothing", or passes only with `allow_empty: true`).
DESIGN.md "Verdicts": a check that matched nothing never passes silently. The automatic
`no_unexpected_errors` (added by `evaluate_all` to every run) is judged the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import TypeAdapter

from harness.checks import evaluate_all
from harness.checks.models import Expectation
from harness.checks.result import CheckResult
from harness.journal import (
    AuditRecordedEvent,
    BreakerEvent,
    CredentialRejectedEvent,
    Event,
    FaultStarted,
    FaultStopped,
    OperationEvent,
    PhiScanEvent,
    RequestEvent,
    TokenIssuedEvent,
)
from tests.harness.checks.journals import completed_jobs, job, journal, ops, requests, run
from tests.harness.checks.test_invariants import check, sync
from tests.harness.checks.test_vendor_side import breaker_like, seen, steady
from tests.harness.checks.test_vendor_side import outage as vendor_outage
from tests.harness.checks.test_vendor_side import token as token_request

Build = Callable[[], list[Event]]
_EXPECTATION: TypeAdapter[Expectation] = TypeAdapter(Expectation)


def outage(begin: float = 60.0, end: float = 180.0, target: str = "medplum") -> list[Event]:
    return [FaultStarted(t=begin, fault_id="f1", fault="outage", target=target, params={}, name=f"outage@{target}"),
            FaultStopped(t=end, fault_id="f1", fault="outage", target=target, name=f"outage@{target}")]


def br(t: float, a: str, b: str, name: str = "medplum") -> BreakerEvent:
    return BreakerEvent(t=t, breaker=name, from_state=a, to_state=b, failure_rate=None, calls=10)


def healthy_breaker(name: str = "medplum") -> list[Event]:
    return [br(62.0, "CLOSED", "OPEN", name), br(122.0, "OPEN", "HALF_OPEN", name),
            br(122.5, "HALF_OPEN", "OPEN", name), br(182.5, "OPEN", "HALF_OPEN", name),
            br(183.0, "HALF_OPEN", "CLOSED", name)]


def calls(vendor: str = "medplum") -> list[Event]:
    return requests(0, 60, every=5.0, vendor=vendor)


def medplum_ops(begin: float, end: float, **kw: Any) -> list[Event]:
    return ops(begin, end, vendor="medplum", **kw)


def recovering(until: float) -> list[Event]:
    """Operations on Medplum every 2 s: failing from 60 s until `until`, succeeding otherwise."""
    out: list[Event] = []
    for t in (float(s) for s in range(0, 420, 2)):
        failing = 60 <= t < until
        out.append(OperationEvent(t=t + 0.02, op_id=int(t), operation="read_patient", vendor="medplum", started=t,
                                  duration_ms=20.0, ok=not failing, error="ServerError" if failing else None))
    return out


def token(t: float, vendor: str = "epic", expires: float = 300.0) -> TokenIssuedEvent:
    return TokenIssuedEvent(t=t, vendor=vendor, expires_in_s=expires, reason="initial")


def request(t: float, vendor: str = "epic", status: int = 200) -> RequestEvent:
    return RequestEvent(t=t, vendor=vendor, method="GET", path="/p", status=status, duration_ms=1.0, attempt=1,
                        error=None if status < 400 else "ServerError", correlation_id=f"c{t:g}")


def rejected(t: float) -> CredentialRejectedEvent:
    return CredentialRejectedEvent(t=t, vendor="medplum", credential="lab-secret-1", status=401,
                                   error="invalid_client", fallback=False)


def audit(t: float, cid: str = "sync-o1#1") -> AuditRecordedEvent:
    return AuditRecordedEvent(t=t, event_type="FHIR_SYNC", org_id="org_1", correlation_id=cid,
                              resource_type="Observation", resource_id="o1", outcome="success")


def scan(t: float, *elements: str) -> PhiScanEvent:
    return PhiScanEvent(t=t, vendor="medplum", resource_type="Patient", resource_id="pt_1", correlation_id=None,
                        phi_elements=elements)


def operation(t: float, error: str | None = None) -> OperationEvent:
    return OperationEvent(t=t + 0.01, op_id=int(t), operation="read_patient", vendor="epic", started=t,
                          duration_ms=10.0, ok=error is None, error=error)


@dataclass(frozen=True)
class Case:
    spec: dict[str, Any] | None  # None: the automatic no_unexpected_errors
    passing: Build
    failing: Build
    empty: Build


D = 420.0
CASES: dict[str, Case] = {
    "breaker_opens": Case(
        {"check": "breaker_opens", "vendor": "medplum", "within": "30s"},
        lambda: journal(D, outage(), healthy_breaker()),
        lambda: journal(D, outage(), [br(100.0, "CLOSED", "OPEN")]),  # 40 s after the fault
        lambda: journal(D, outage())),  # the breaker saw no call
    "breaker_half_opens": Case(
        {"check": "breaker_half_opens", "vendor": "medplum"},
        lambda: journal(D, outage(), healthy_breaker()),
        lambda: journal(D, outage(), [br(62.0, "CLOSED", "OPEN"), br(150.0, "OPEN", "HALF_OPEN")]),
        lambda: journal(D, outage(), calls())),  # called, never opened
    "breaker_closes": Case(
        {"check": "breaker_closes", "vendor": "medplum", "within": "90s"},
        lambda: journal(D, outage(), healthy_breaker()),
        lambda: journal(D, outage(), healthy_breaker()[:3], [br(300.0, "OPEN", "HALF_OPEN"),
                                                            br(301.0, "HALF_OPEN", "CLOSED")]),  # 121 s late
        lambda: journal(D, outage(), calls())),  # never left CLOSED: nothing to close again
    "breaker_stays_closed": Case(
        {"check": "breaker_stays_closed", "vendor": "medplum"},
        lambda: journal(D, outage(), calls()),
        lambda: journal(D, outage(), healthy_breaker()),
        lambda: journal(D, outage())),
    "success_rate": Case(
        {"check": "success_rate", "vendor": "medplum", "min": "99%"},
        lambda: journal(D, medplum_ops(0, 400)),
        lambda: journal(D, medplum_ops(0, 400, fail_every=10)),
        lambda: journal(D, ops(0, 400))),  # only Epic's operations
    "latency": Case(
        {"check": "latency", "vendor": "medplum", "max": "100ms"},
        lambda: journal(D, medplum_ops(0, 400, ms=20.0)),
        lambda: journal(D, medplum_ops(0, 400, ms=450.0)),
        lambda: journal(D, medplum_ops(0, 400, fail_every=1))),  # no successful operation
    "recovery_time": Case(
        {"check": "recovery_time", "vendor": "medplum", "max": "30s"},
        lambda: journal(D, outage(), recovering(180)),
        lambda: journal(D, outage(), recovering(300)),  # first lasting success 120 s after the end
        lambda: journal(D, recovering(180))),  # no fault to recover from
    "no_credential_rejected": Case(
        {"check": "no_credential_rejected", "vendor": "medplum"},
        lambda: journal(D, calls()),
        lambda: journal(D, calls(), [rejected(30.0)]),
        lambda: journal(D, calls("epic"))),  # Medplum never called
    "sla_band": Case(
        {"check": "sla_band", "sla": "000-7-success-rate", "vendor": "medplum"},
        lambda: journal(D, medplum_ops(0, 400)),
        lambda: journal(D, medplum_ops(0, 400, fail_every=2)),
        lambda: journal(D, ops(0, 400))),
    "alert_rule": Case(
        {"check": "alert_rule", "rule": "002-8.4-5xx-rate", "vendor": "medplum"},
        lambda: journal(400, requests(0, 400, error_every=50)),
        lambda: journal(400, requests(0, 400, error_every=10)),
        lambda: journal(400, requests(0, 400, vendor="epic"))),  # nothing feeds Medplum's 5xx ratio
    "events": Case(
        {"check": "events", "kind": "request", "where": {"vendor": "medplum", "status": 503}, "min": 1, "max": 3},
        lambda: journal(D, [request(10.0, "medplum", 503)]),
        lambda: journal(D, [request(float(t), "medplum", 503) for t in range(10, 15)]),
        lambda: journal(D, calls())),  # requests, but none a 503
    "invariant no_job_lost_or_duplicated": Case(
        {"check": "invariant", "invariant": "no_job_lost_or_duplicated"},
        lambda: journal(120, completed_jobs(0, 60, every=10, seconds=2)),
        lambda: journal(120, [job("job.started", 2, "ghost", attempt=1)]),
        lambda: journal(120, ops(0, 60))),
    "invariant consent_never_bypassed": Case(
        {"check": "invariant", "invariant": "consent_never_bypassed"},
        lambda: journal(60, [check(1, "granted"), sync(2)]),
        lambda: journal(60, [check(1, "denied"), sync(2, "fhir_sync.failed", "ConsentDenied"), sync(11)]),
        lambda: journal(60, ops(0, 60))),
    "invariant no_phi_to_medplum": Case(
        {"check": "invariant", "invariant": "no_phi_to_medplum"},
        lambda: journal(60, [sync(2), scan(50)]),
        lambda: journal(60, [sync(2), scan(50, "name", "birthDate")]),
        lambda: journal(60, ops(0, 60))),
    "invariant no_expired_or_revoked_credential": Case(
        {"check": "invariant", "invariant": "no_expired_or_revoked_credential", "vendor": "epic"},
        lambda: journal(600, [token(0.0), request(100.0)]),
        lambda: journal(600, [token(0.0, expires=60.0), request(100.0)]),
        lambda: journal(600, [request(100.0)])),  # no token ever issued
    "invariant every_write_audited": Case(
        {"check": "invariant", "invariant": "every_write_audited"},
        lambda: journal(60, [sync(2), audit(2.5)]),
        lambda: journal(60, [sync(2)]),
        lambda: journal(60, ops(0, 60))),
    "invariant breaker_transitions_legal": Case(
        {"check": "invariant", "invariant": "breaker_transitions_legal", "vendor": "medplum"},
        lambda: journal(D, healthy_breaker()),
        lambda: journal(D, [br(10.0, "CLOSED", "HALF_OPEN")]),
        lambda: journal(D, calls())),
    "no_hammering": Case(
        {"check": "no_hammering", "vendor": "medplum"},
        lambda: journal(240, vendor_outage(), breaker_like()),
        lambda: journal(240, vendor_outage(), steady(60, 180, 2.0, 503)),
        lambda: journal(240, steady(0, 240, 1.0))),  # no fault the vendor failed under
    "retry_after_honoured": Case(
        {"check": "retry_after_honoured", "vendor": "medplum"},
        lambda: journal(120, [seen(10.0, 429, retry_after=30.0), seen(40.0)]),
        lambda: journal(120, [seen(10.0, 429, retry_after=30.0), seen(25.0)]),
        lambda: journal(120, [seen(10.0, 429), seen(25.0)])),  # a 429 with no Retry-After
    "no_token_storm": Case(
        {"check": "no_token_storm", "vendor": "epic"},
        lambda: journal(600, [token_request(0.0), token_request(240.0)]),
        lambda: journal(600, [token_request(float(t)) for t in range(100, 130, 2)]),
        lambda: journal(600, steady(0, 600, 5.0))),
    "no_unexpected_errors": Case(
        None,
        lambda: journal(60, [operation(1.0), operation(2.0, "ServerError"), operation(3.0, "UnexpectedStatus")]),
        lambda: journal(60, [operation(1.0), operation(2.0, "UnexpectedKeyError")]),
        lambda: journal(60, calls())),  # no operation at all
}


def judge(case: Case, events: list[Event], **options: Any) -> CheckResult:
    if case.spec is None:
        [automatic] = evaluate_all([], events, "000_030ea53f0735abf7.txt §2")
        return automatic
    return run(_EXPECTATION.validate_python({**case.spec, **options}), events)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_passes_on_what_it_matched(kind: str) -> None:
    result = judge(CASES[kind], CASES[kind].passing())
    assert result.verdict == "pass", result.detail
    assert result.matched is not None, result
    assert result.matched > 0, result
    assert not result.detail.startswith("matched nothing")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fails_on_what_it_matched(kind: str) -> None:
    result = judge(CASES[kind], CASES[kind].failing())
    assert result.verdict == "fail", result.detail
    assert result.matched is not None
    assert not result.detail.startswith("matched nothing"), result.detail


@pytest.mark.parametrize("kind", sorted(CASES))
def test_matching_nothing_never_passes(kind: str) -> None:
    result = judge(CASES[kind], CASES[kind].empty())
    assert (result.verdict, result.matched) == ("fail", 0), result.detail
    assert result.detail.startswith("matched nothing: "), result.detail


ALLOWING = sorted(k for k, c in CASES.items() if c.spec is not None and c.spec["check"] != "events")


@pytest.mark.parametrize("kind", ALLOWING)
def test_allow_empty_is_the_explicit_way_to_accept_nothing(kind: str) -> None:
    result = judge(CASES[kind], CASES[kind].empty(), allow_empty=True)
    assert (result.verdict, result.matched) == ("pass", 0), result.detail
    assert result.detail.startswith("matched nothing: ")
    assert result.detail.endswith("(allowed: allow_empty is true)")
    judged = judge(CASES[kind], CASES[kind].failing(), allow_empty=True)
    assert judged.verdict == "fail"  # it allows nothing, not a failure


def test_events_refuse_allow_empty_and_pass_max_only_on_a_real_absence() -> None:
    with pytest.raises(ValueError, match="allow_empty does not apply to events"):
        _EXPECTATION.validate_python({"check": "events", "kind": "request", "max": 0, "allow_empty": True})
    none = run(_EXPECTATION.validate_python({"check": "events", "kind": "request", "where": {"status": 503},
                                             "max": 0}), journal(D, calls()))
    assert (none.verdict, none.matched, none.detail) == ("pass", 0, "0 found")


def test_every_check_kind_has_its_three_journals() -> None:
    kinds = {c.spec["check"] for c in CASES.values() if c.spec is not None}
    invariants = {c.spec["invariant"] for c in CASES.values() if c.spec is not None and "invariant" in c.spec}
    from harness.checks.invariants import INVARIANTS
    from harness.checks.registry import EVALUATORS

    assert kinds == {model.model_fields["check"].annotation.__args__[0] for model in EVALUATORS}  # type: ignore[union-attr]
    assert invariants == set(INVARIANTS)
