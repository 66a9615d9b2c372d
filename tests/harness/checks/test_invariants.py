"""Every invariant: journals that keep it and journals that break it (each in its own way)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import TypeAdapter

from harness.checks.models import Expectation
from harness.journal import (
    AuditRecordedEvent,
    BreakerEvent,
    ConsentCheckedEvent,
    CredentialRejectedEvent,
    Event,
    FhirSyncEvent,
    PhiScanEvent,
    QueueEvent,
    RequestEvent,
    TokenIssuedEvent,
    TokenRefreshedEvent,
)
from tests.harness.checks.journals import job, journal, run

Build = Callable[[], list[Event]]
_EXPECTATION: TypeAdapter[Expectation] = TypeAdapter(Expectation)


def invariant(name: str, **options: object) -> object:
    return _EXPECTATION.validate_python({"check": "invariant", "invariant": name, **options})


# -- jobs ------------------------------------------------------------------------------------------------------

def lifecycle(jid: str, at: float, *, rerun: bool = False) -> list[Event]:
    events = [job("job.added", at, jid, attempts=3, delay_s=0.0), job("job.started", at + 1, jid, attempt=1)]
    if rerun:  # its worker stalled: taken back, run again, the first worker's outcome discarded
        events += [job("job.stalled", at + 31, jid, stalled_count=1, failed=False),
                   job("job.started", at + 32, jid, attempt=1), job("job.lock_lost", at + 33, jid)]
        at += 32
    return [*events, job("job.completed", at + 2, jid, attempt=1, duration_ms=1000.0)]


def retried(jid: str, at: float) -> list[Event]:
    return [job("job.added", at, jid, attempts=2, delay_s=0.0), job("job.started", at + 1, jid, attempt=1),
            job("job.retry", at + 2, jid, attempt=1, delay_s=1.0, error="ServerError"),
            job("job.promoted", at + 3, jid), job("job.started", at + 3, jid, attempt=2),
            job("job.failed", at + 4, jid, attempts=2, error="ServerError"),
            job("job.retried", at + 10, jid), job("job.started", at + 11, jid, attempt=1),
            job("job.completed", at + 12, jid, attempt=1, duration_ms=500.0)]


JOBS_OK: dict[str, Build] = {
    "completed": lambda: journal(120, lifecycle("a", 1), lifecycle("b", 2)),
    "stalled and rerun": lambda: journal(120, lifecycle("a", 1, rerun=True)),
    "retried by backoff and by an operator": lambda: journal(120, retried("a", 1)),
    "de-duplicated add": lambda: journal(120, lifecycle("a", 1), [job("job.duplicated", 5, "a")]),
    "still waiting at the end": lambda: journal(120, [job("job.added", 100, "w", attempts=3, delay_s=0.0)]),
    "removed by retention": lambda: journal(120, lifecycle("a", 1), [
        QueueEvent(t=50, kind="queue.removed", queue="fhir-sync", state="completed", count=1, reason="retention")]),
}
JOBS_BAD: dict[str, Build] = {
    "lost: active and silent": lambda: journal(300, [job("job.added", 1, "a", attempts=3, delay_s=0.0),
                                                     job("job.started", 2, "a", attempt=1)]),
    "two workers at once": lambda: journal(120, [job("job.added", 1, "a", attempts=3, delay_s=0.0),
                                                 job("job.started", 2, "a", attempt=1),
                                                 job("job.started", 3, "a", attempt=1),
                                                 job("job.completed", 4, "a", attempt=1, duration_ms=1.0)]),
    "completed twice": lambda: journal(120, lifecycle("a", 1),
                                       [job("job.completed", 9, "a", attempt=1, duration_ms=1.0)]),
    "added twice": lambda: journal(120, [job("job.added", 1, "a", attempts=3, delay_s=0.0)], lifecycle("a", 2)),
    "never added": lambda: journal(120, [job("job.started", 2, "ghost", attempt=1)]),
}


@pytest.mark.parametrize("case", sorted(JOBS_OK))
def test_jobs_accounted(case: str) -> None:
    result = run(invariant("no_job_lost_or_duplicated"), JOBS_OK[case]())
    assert result.verdict == "pass", result.detail


@pytest.mark.parametrize("case", sorted(JOBS_BAD))
def test_jobs_lost_or_duplicated(case: str) -> None:
    result = run(invariant("no_job_lost_or_duplicated"), JOBS_BAD[case]())
    assert result.verdict == "fail", result.detail
    assert result.source == "002_437ee203264dfa64.txt §2.2"


def test_pending_jobs_fail_when_not_allowed() -> None:
    events = JOBS_OK["still waiting at the end"]()
    assert run(invariant("no_job_lost_or_duplicated", allow_pending=False), events).verdict == "fail"


# -- consent ---------------------------------------------------------------------------------------------------

def sync(t: float, kind: str = "fhir_sync.completed", error: str | None = None, record: str = "o1",
         cid: str = "sync-o1#1") -> FhirSyncEvent:
    return FhirSyncEvent(t=t, kind=kind, resource="observation", record_id=record, correlation_id=cid, error=error,
                         created=True if kind == "fhir_sync.completed" else None)


def check(t: float, status: str, data_class: str = "LAB_RESULTS") -> ConsentCheckedEvent:
    return ConsentCheckedEvent(t=t, org_id="org_1", status=status, data_class=data_class, purpose="CARE")


CONSENT: dict[str, tuple[Build, str]] = {
    "granted then synced": (lambda: journal(60, [check(1, "granted"), sync(2)]), "pass"),
    "refused, never synced": (lambda: journal(60, [check(1, "denied"), sync(2, "fhir_sync.failed", "ConsentDenied")]),
                              "pass"),
    "refused, granted again, synced": (lambda: journal(60, [
        check(1, "denied"), sync(2, "fhir_sync.failed", "ConsentDenied"), check(10, "granted"), sync(11)]), "pass"),
    "refused then synced anyway": (lambda: journal(60, [
        check(1, "denied"), sync(2, "fhir_sync.failed", "ConsentDenied"), sync(11)]), "fail"),
    "refused at enqueue then synced": (lambda: journal(60, [
        check(1, "denied"), sync(2, "fhir_sync.enqueue_failed", "ConsentDenied"), sync(11)]), "fail"),
    "granted for another data class only": (lambda: journal(60, [
        sync(2, "fhir_sync.failed", "ConsentDenied"), check(10, "granted", "CLINICAL_NOTES"), sync(11)]), "fail"),
}


@pytest.mark.parametrize("case", sorted(CONSENT))
def test_consent_never_bypassed(case: str) -> None:
    build, verdict = CONSENT[case]
    result = run(invariant("consent_never_bypassed"), build())
    assert result.verdict == verdict, result.detail


# -- PHI -------------------------------------------------------------------------------------------------------

def scan(t: float, *elements: str) -> PhiScanEvent:
    return PhiScanEvent(t=t, vendor="medplum", resource_type="Patient", resource_id="pt_abc123",
                        correlation_id="sync-o1#1", phi_elements=elements)


PHI: dict[str, tuple[Build, str]] = {
    "clean patient": (lambda: journal(60, [scan(1), sync(2)]), "pass"),
    "nothing synced": (lambda: journal(60), "fail"),  # matched nothing
    "name and birth date leaked": (lambda: journal(60, [scan(1, "name", "birthDate"), sync(2)]), "fail"),
    "synced without evidence": (lambda: journal(60, [sync(2)]), "fail"),
}


@pytest.mark.parametrize("case", sorted(PHI))
def test_no_phi_to_medplum(case: str) -> None:
    build, verdict = PHI[case]
    result = run(invariant("no_phi_to_medplum"), build())
    assert result.verdict == verdict, result.detail


def test_phi_evidence_can_be_waived() -> None:
    result = run(invariant("no_phi_to_medplum", allow_empty=True), journal(60, [sync(2)]))
    assert (result.verdict, result.matched) == ("pass", 0)
    assert result.detail.startswith("matched nothing: 1 sync(s) reached Medplum")


# -- credentials -----------------------------------------------------------------------------------------------

def token(t: float, expires: float = 300.0, refresh: bool = False) -> Event:
    cls = TokenRefreshedEvent if refresh else TokenIssuedEvent
    return cls(t=t, vendor="epic", expires_in_s=expires, reason="expiring" if refresh else "initial")


def req(t: float, ms: float = 100.0, status: int = 200) -> RequestEvent:
    return RequestEvent(t=t, vendor="epic", method="GET", path="/api/FHIR/R4/Patient/e1", status=status,
                        duration_ms=ms, attempt=1, error=None, correlation_id=f"r{t:g}")


def rejected(t: float, fallback: bool = False) -> CredentialRejectedEvent:
    return CredentialRejectedEvent(t=t, vendor="epic", credential="EPIC_PRIVATE_KEY", status=400,
                                   error="invalid_client", fallback=fallback)


CREDENTIALS: dict[str, tuple[Build, str]] = {
    "refreshed before expiry": (lambda: journal(700, [token(1), req(100), token(250, refresh=True), req(400)]), "pass"),
    "unauthenticated before any token": (lambda: journal(60, [req(0.5), token(1), req(10)]), "pass"),
    "rotation with a fallback": (lambda: journal(60, [token(1), rejected(5, fallback=True), token(5.1), req(10)]),
                                 "pass"),
    "sent after expiry": (lambda: journal(700, [token(1), req(100), req(400)]), "fail"),
    "sent after the credential was refused": (lambda: journal(60, [token(1), rejected(5), req(10)]), "fail"),
}


@pytest.mark.parametrize("case", sorted(CREDENTIALS))
def test_no_expired_or_revoked_credential(case: str) -> None:
    build, verdict = CREDENTIALS[case]
    result = run(invariant("no_expired_or_revoked_credential"), build())
    assert result.verdict == verdict, result.detail


def test_token_margin_of_002_2_1() -> None:
    """Reused until 60 s before expiry: a request 30 s before expiry breaks the margin, not the expiry."""
    events = journal(400, [token(1, expires=300), req(272)])
    assert run(invariant("no_expired_or_revoked_credential"), events).verdict == "pass"
    assert run(invariant("no_expired_or_revoked_credential", margin="60s"), events).verdict == "fail"


# -- audit -----------------------------------------------------------------------------------------------------

def audit(t: float, event_type: str = "FHIR_SYNC", outcome: str = "success", cid: str = "sync-o1#1") -> Event:
    return AuditRecordedEvent(t=t, event_type=event_type, org_id="org_1", correlation_id=cid,
                              resource_type="Observation", resource_id="o1", outcome=outcome)


AUDIT: dict[str, tuple[Build, str]] = {
    "sync audited": (lambda: journal(60, [audit(2), sync(2)]), "pass"),
    "failure audited": (lambda: journal(60, [audit(2, "FHIR_SYNC_FAILED", "failure"),
                                             sync(2, "fhir_sync.failed", "ServerError")]), "pass"),
    "sync not audited": (lambda: journal(60, [sync(2)]), "fail"),
    "audited under another correlation id": (lambda: journal(60, [audit(2, cid="other"), sync(2)]), "fail"),
    "failure audited as a success": (lambda: journal(60, [audit(2), sync(2, "fhir_sync.failed", "ServerError")]),
                                     "fail"),
}


@pytest.mark.parametrize("case", sorted(AUDIT))
def test_every_write_audited(case: str) -> None:
    build, verdict = AUDIT[case]
    result = run(invariant("every_write_audited"), build())
    assert result.verdict == verdict, result.detail


# -- breaker ---------------------------------------------------------------------------------------------------

def br(t: float, a: str, b: str, manual: bool = False) -> BreakerEvent:
    return BreakerEvent(t=t, breaker="epic", from_state=a, to_state=b, failure_rate=None, calls=10, manual=manual)


BREAKER: dict[str, tuple[Build, str]] = {
    "open, half-open, closed": (lambda: journal(300, [br(10, "CLOSED", "OPEN"), br(70, "OPEN", "HALF_OPEN"),
                                                      br(71, "HALF_OPEN", "OPEN"), br(131, "OPEN", "HALF_OPEN"),
                                                      br(132, "HALF_OPEN", "CLOSED")]), "pass"),
    "manual reset": (lambda: journal(300, [br(10, "CLOSED", "OPEN"), br(20, "OPEN", "CLOSED", manual=True)]), "pass"),
    "forced open and reset": (lambda: journal(300, [br(10, "CLOSED", "FORCED_OPEN", manual=True),
                                                    br(20, "FORCED_OPEN", "CLOSED", manual=True)]), "pass"),
    "open straight to closed": (lambda: journal(300, [br(10, "CLOSED", "OPEN"), br(20, "OPEN", "CLOSED")]), "fail"),
    "closed to half-open": (lambda: journal(300, [br(10, "CLOSED", "HALF_OPEN")]), "fail"),
    "discontinuous": (lambda: journal(300, [br(10, "CLOSED", "OPEN"), br(70, "HALF_OPEN", "CLOSED")]), "fail"),
}


@pytest.mark.parametrize("case", sorted(BREAKER))
def test_breaker_transitions_legal(case: str) -> None:
    build, verdict = BREAKER[case]
    result = run(invariant("breaker_transitions_legal"), build())
    assert result.verdict == verdict, result.detail


# -- the model -------------------------------------------------------------------------------------------------

def test_options_must_apply_to_the_invariant() -> None:
    with pytest.raises(ValueError, match="option 'margin' does not apply to invariant 'consent_never_bypassed'"):
        invariant("consent_never_bypassed", margin="60s")
    with pytest.raises(ValueError, match="invariant"):
        invariant("no_such_invariant")
