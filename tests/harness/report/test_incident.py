"""incident.md: severity by runbook 001's classification from what the journal shows, in 001's template."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.checks.result import CheckResult
from harness.journal import (
    Event,
    FaultStarted,
    FhirSyncEvent,
    ScenarioEnded,
    ScenarioStarted,
    StepDone,
    TokenFailedEvent,
)
from harness.report.derived import scenario_items
from harness.report.incident import render_incident, scenario_severity
from tests.harness.report.builders import check, job, op, outage_journal, summary_for


def _journal(body: Sequence[Event], name: str = "s") -> list[Event]:
    return [ScenarioStarted(t=0.0, scenario=name, file=f"{name}.yaml", seed=7, mode="virtual", duration_s=60.0),
            *body, ScenarioEnded(t=60.0, scenario=name, operations=0, in_flight_cancelled=0)]


def _severity(events: list[Event], checks: Sequence[CheckResult] = ()) -> tuple[str, str]:
    summary = summary_for([(events[0].scenario if isinstance(events[0], ScenarioStarted) else "s", checks)])
    [item] = scenario_items(summary, events)
    severity = scenario_severity(item)
    return severity.level, " | ".join(severity.reasons)


def _ops(fail: set[int], vendor: str = "medplum") -> list[Event]:
    return [op(i + 0.5, ok=i not in fail, vendor=vendor, op_id=i) for i in range(60)]


def test_no_impact_is_p3() -> None:
    assert _severity(_journal(_ops(set())))[0] == "P3"


def test_intermittent_errors_are_p2() -> None:
    level, reasons = _severity(_journal(_ops({10, 20, 30, 40, 41, 42})))  # a 2 s streak is no outage
    assert level == "P2"
    assert "6 of 60 operations failed" in reasons


def test_slow_responses_are_p2() -> None:
    level, reasons = _severity(_journal([op(i + 0.5, duration_ms=900.0 if i == 5 else 10.0) for i in range(60)]))
    assert (level, "slow responses" in reasons) == ("P2", True)


def test_a_failed_check_alone_is_p2() -> None:
    assert _severity(_journal(_ops(set())), [check("latency", passed=False)])[0] == "P2"


def test_a_vendor_down_behind_an_open_breaker_is_p1() -> None:
    level, reasons = _severity(outage_journal("outage"))
    assert level == "P1"
    assert "medplum down: every operation failed for 29.0 s" in reasons
    assert "breaker OPEN: medplum" in reasons


def test_jobs_failed_for_good_are_data_loss_p0() -> None:
    body = [*_ops(set()), job(1.0, "job.added", "a", delay_s=0.0, attempts=1),
            job(2.0, "job.started", "a", attempt=1, worker="w"),
            job(3.0, "job.failed", "a", attempts=1, error="ServerError", worker="w")]
    level, reasons = _severity(_journal(body))
    assert level == "P0"  # no sync event names job a's record: nothing shows it was ever synced
    assert "data loss: 1 record(s) lost (1 failed job(s) no sync event ties to a record); 1 of 1 jobs failed" in reasons


def test_a_job_failed_because_consent_was_refused_is_consent_enforced_not_data_loss() -> None:
    """002 §3.2: a revoked patient's queued jobs end failed with a consent reason, not retried, by design."""
    failed = [job(1.0, "job.added", "a", delay_s=0.0, attempts=1), job(2.0, "job.started", "a", attempt=1, worker="w"),
              job(3.0, "job.failed", "a", attempts=1, error="UnrecoverableJobError", worker="w")]
    refused = FhirSyncEvent(t=3.0, kind="fhir_sync.failed", resource="encounter", record_id="enc_1",
                            correlation_id="sync-a#1", error="ConsentDenied")
    assert _severity(_journal([*_ops(set()), *failed, refused]))[0] == "P3"
    broken = refused.model_copy(update={"error": "ServerError"})
    assert _severity(_journal([*_ops(set()), *failed, broken]))[0] == "P0"


def test_a_failed_job_retried_to_completion_is_not_data_loss() -> None:
    body = [*_ops(set()), job(1.0, "job.added", "a", delay_s=0.0, attempts=1),
            job(2.0, "job.started", "a", attempt=1, worker="w"),
            job(3.0, "job.failed", "a", attempts=1, error="ServerError", worker="w"),
            job(4.0, "job.retried", "a"), job(5.0, "job.started", "a", attempt=1, worker="w"),
            job(6.0, "job.completed", "a", attempt=1, worker="w", duration_ms=1.0)]
    assert _severity(_journal(body))[0] == "P3"


@pytest.mark.parametrize(("name", "words"), [("invariant[consent_never_bypassed]", "consent bypassed"),
                                             ("invariant[no_phi_to_medplum]", "PHI exposure"),
                                             ("invariant[no_job_lost_or_duplicated]", "data loss")])
def test_a_failed_consent_phi_or_job_invariant_is_p0(name: str, words: str) -> None:
    level, reasons = _severity(_journal(_ops(set())), [check(name, passed=False, kind="invariant")])
    assert (level, words in reasons) == ("P0", True)


def test_every_vendor_down_at_once_is_p0_services_unavailable() -> None:
    body = [*_ops(set(range(20, 40)), vendor="epic"), *_ops(set(range(25, 45)), vendor="medplum")]
    body.sort(key=lambda e: e.t)
    level, reasons = _severity(_journal(body))
    assert level == "P0"
    assert "every vendor down at once: every operation failed for 14.0 s" in reasons
    only_one = [*_ops(set(range(20, 40)), vendor="epic"), *_ops(set(), vendor="medplum")]
    assert _severity(_journal(sorted(only_one, key=lambda e: e.t)))[0] == "P1"


def test_incident_md_follows_runbook_001s_template() -> None:
    checks = [check("breaker_opens[medplum]"), check("latency", passed=False)]
    summary = summary_for([("outage", checks)])
    events = outage_journal("outage", checks)
    events.insert(3, FaultStarted(t=1.0, fault_id="f0", fault="rotate", target="epic",
                                  params={"client_secret": "s3cr3t-value", "grace_s": 5}))
    md = render_incident(summary, scenario_items(summary, events))
    for heading in ("# Incident Report: outage: rotate on epic, outage on medplum", "**Incident ID:** INC-20260101-001",
                    "**Severity:** P1 - High", "**Status:** Unresolved at the end of the scenario",
                    "**Date:** 2026-01-01", "## Summary", "## Impact", "## Timeline", "## Root Cause",
                    "## Resolution", "## Verification Checklist", "## Action Items"):
        assert heading in md
    assert "001 §Incident Classification" in md
    assert "Services available? Partial → Core features working? No → P1" in md
    assert "- Users affected: operations failed 30 of 120 (25.0%)" in md
    assert "- Data loss: No (no job events in the journal)" in md
    assert '| T+0:30.0 | Fault f1 started: outage on medplum "outage@medplum" (status=503) |' in md
    assert "| T+0:32.0 | Breaker medplum: CLOSED → OPEN (0 calls) |" in md
    assert "| T+0:30.5 | First failed operation (medplum); 30 in total |" in md
    assert "- Fault f1 \"outage@medplum\" removed by the scenario's timeline at T+1:00.0" in md
    assert "- Fault f0 \"rotate@epic\" was never removed" in md
    assert "- Breaker medplum CLOSED for good at T+1:33.0" in md
    assert "- [x] `breaker_opens[medplum]`: PASS" in md
    assert "- [ ] `latency`: FAIL" in md
    assert "- [ ] Fix `latency`" in md
    assert "s3cr3t-value" not in md
    assert "client_secret=[redacted]" in md


@pytest.mark.parametrize(("status", "level"), [(401, "P1"), (400, "P1"), (500, "P3"), (None, "P3")])
def test_only_a_refused_token_request_is_an_authentication_failure(status: int | None, level: str) -> None:
    body = [*_ops(set()), TokenFailedEvent(t=5.0, vendor="epic", status=status, error="AuthError")]
    assert _severity(_journal(sorted(body, key=lambda e: e.t)))[0] == level


def test_operator_steps_are_named_as_the_cause_when_no_fault_was_injected() -> None:
    step = StepDone(t=20.0, step_id="s1", action="revoke_credential", vendor="epic", params={"which": "old"})
    skipped = StepDone(t=25.0, step_id="s2", action="manual", vendor="epic",
                       params={"instruction": "call Epic", "skipped": True, "confirmed": False})
    events = _journal([*_ops({30, 31, 32, 33, 34, 35, 36, 37}), step, skipped], name="rotation")
    summary = summary_for([("rotation", [])])
    md = render_incident(summary, scenario_items(summary, events))
    assert "(after operator steps: revoke_credential@epic)" in md  # the skipped manual step changed nothing
    assert "- Operator step s1: `revoke_credential` on epic (which=old) at T+0:20.0" in md
    assert "no fault injected" not in md
