"""Every band of the catalogue: journals in the healthy band and out of it; scopes; worst allowed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checks.models import SlaBand
from harness.journal import BreakerEvent, Event, FlagChangedEvent, QueueEvent
from harness.sla import default_catalogue
from tests.harness.checks.journals import (
    audit_mirror,
    failed_jobs,
    fault,
    job,
    journal,
    ops,
    reconciliation,
    run,
)

Build = Callable[[], list[Event]]


def breaker(t: float, a: str, b: str) -> BreakerEvent:
    return BreakerEvent(t=t, breaker="epic", from_state=a, to_state=b, failure_rate=None, calls=10)


def flag(t: float, name: str, enabled: bool) -> FlagChangedEvent:
    return FlagChangedEvent(t=t, flag=name, enabled=enabled, previous=not enabled, scope="global", user_ref=None,
                            batch_size=1)


def drain(seconds: float) -> list[Event]:
    """Two jobs active when the queue is paused at 100 s; the last finishes `seconds` later."""
    events: list[Event] = []
    for i, done in enumerate((110.0, 100.0 + seconds)):
        jid = f"a{i}"
        events += [job("job.added", 90, jid, attempts=3, delay_s=0.0), job("job.started", 91, jid, attempt=1),
                   job("job.completed", done, jid, attempt=1, duration_ms=1000.0)]
    return [*events, QueueEvent(t=100, kind="queue.paused", queue="fhir-sync")]


def recovery(soak: float) -> list[Event]:
    return [flag(10, "epic_fhir_read_only", False), flag(11, "epic_fhir_write", False),
            flag(100, "epic_fhir_read_only", True), flag(100 + soak, "epic_fhir_write", True)]


#: band id -> (a healthy journal, a journal in a worse band, that band)
CASES: dict[str, tuple[Build, Build, str]] = {
    "000-7-success-rate": (lambda: journal(300, ops(0, 300)), lambda: journal(300, ops(0, 300, fail_every=10)),
                           "critical"),
    "000-7-write-success-rate": (
        lambda: journal(300, ops(0, 300, operation="create_observation"), ops(0, 300, fail_every=2)),
        lambda: journal(300, ops(0, 300, operation="update_patient", fail_every=40), ops(0, 300)),
        "warning"),
    "000-7-avg-latency": (lambda: journal(300, ops(0, 300, ms=120)), lambda: journal(300, ops(0, 300, ms=900)),
                          "warning"),
    "000-2-error-rate": (lambda: journal(300, ops(0, 300, fail_every=20)),
                         lambda: journal(300, ops(0, 300, fail_every=5)), "critical"),
    "000-7-circuit-state": (lambda: journal(300, ops(0, 300)),  # no transition: CLOSED throughout
                            lambda: journal(300, [breaker(50, "CLOSED", "OPEN"), breaker(110, "OPEN", "HALF_OPEN"),
                                                  breaker(111, "HALF_OPEN", "CLOSED")]), "critical"),
    "002-7.1-failed-jobs": (lambda: journal(120, failed_jobs(3, at=10)), lambda: journal(120, failed_jobs(60, at=10)),
                            "critical"),
    "002-7.1-not-synced": (lambda: journal(120, reconciliation(10, not_synced=20)),
                           lambda: journal(120, reconciliation(10, not_synced=70)), "warning"),
    "002-7.1-stale": (lambda: journal(120, reconciliation(10, stale=5)),
                      lambda: journal(120, reconciliation(10, stale=25)), "warning"),
    "002-7.1-audit-mirror-age": (lambda: journal(3600, audit_mirror(10)), lambda: journal(90000, audit_mirror(10)),
                                 "warning"),
    "002-7.1-audit-mirror-errors": (lambda: journal(120, audit_mirror(10)),
                                    lambda: journal(120, audit_mirror(10, errors=3)), "warning"),
    "002-7.3-maintenance-drain": (lambda: journal(600, drain(60)), lambda: journal(600, drain(180)), "critical"),
    "000-8-staged-recovery-reads": (lambda: journal(3000, recovery(900)), lambda: journal(3000, recovery(300)),
                                    "critical"),
}


def band(sla: str, **options: object) -> SlaBand:
    return SlaBand.model_validate({"check": "sla_band", "sla": sla, **options})


def test_every_band_has_cases() -> None:
    catalogue = default_catalogue()
    assert {b.id for b in [*catalogue.bands, *catalogue.state_bands]} == set(CASES)


@pytest.mark.parametrize("sla", sorted(CASES))
def test_band_is_healthy_on_the_healthy_journal(sla: str) -> None:
    healthy, _, _ = CASES[sla]
    result = run(band(sla), healthy())
    assert result.verdict == "pass", result.detail
    assert result.detail.startswith("healthy")
    assert result.source.startswith(("000_", "002_"))


@pytest.mark.parametrize("sla", sorted(CASES))
def test_band_fails_on_the_breaking_journal(sla: str) -> None:
    _, breaking, worse = CASES[sla]
    result = run(band(sla), breaking())
    assert result.verdict == "fail", result.detail
    assert result.detail.startswith(worse)
    assert run(band(sla, worst=worse), breaking()).verdict == "pass"


def test_success_rate_bands_at_the_runbook_boundaries() -> None:
    entry = default_catalogue().band("000-7-success-rate")
    assert entry is not None
    assert [entry.band(v) for v in (0.995, 0.99, 0.95, 0.949)] == ["healthy", "warning", "warning", "critical"]


def test_scope_steady_leaves_out_fault_windows() -> None:
    events = journal(300, fault(100, 160), ops(0, 100), ops(100, 160, fail_every=1), ops(160, 300))
    assert run(band("000-7-success-rate", vendor="epic"), events).verdict == "fail"
    assert run(band("000-7-success-rate", vendor="epic", scope="steady", grace="5s"), events).verdict == "pass"
    during = run(band("000-7-success-rate", vendor="epic", scope="faults", worst="critical"), events)
    assert during.verdict == "pass"
    assert during.detail.startswith("critical")


def test_after_judges_only_what_a_procedure_leaves_behind() -> None:
    """A drift (no fault window) that a reconciliation at 200 s repairs: bad before, healthy after."""
    events = journal(300, ops(0, 200, fail_every=1), ops(200, 300))
    assert run(band("000-7-success-rate", vendor="epic"), events).verdict == "fail"
    assert run(band("000-7-success-rate", vendor="epic", after="200s"), events).verdict == "pass"
    assert run(band("000-7-success-rate", vendor="epic", after="150s"), events).verdict == "fail"
    with pytest.raises(ValueError, match="after applies"):
        band("000-7-success-rate", scope="faults", after="1m")


def test_no_data_fails_the_band() -> None:
    result = run(band("000-7-avg-latency"), journal(60))
    assert result.verdict == "fail"
    assert "no data" in result.detail


def test_unknown_band_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SLA band '000-7-nope'"):
        band("000-7-nope")
