"""Every observable alert rule of the catalogue: a journal that fires it and one that does not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checks.models import AlertRule
from harness.journal import Event
from harness.sla import default_catalogue
from tests.harness.checks.journals import (
    audit_mirror,
    completed_jobs,
    consent,
    failed_jobs,
    fault,
    job,
    job_errors,
    journal,
    ops,
    reconciliation,
    requests,
    run,
    store_unavailable,
    sync_failures,
    waiting_jobs,
)

Build = Callable[[], list[Event]]

#: rule id -> (a journal that fires it, a journal that does not)
CASES: dict[str, tuple[Build, Build]] = {
    "002-8.4-denied-consent": (lambda: journal(300, consent(60, 240, per_min=10)),
                               lambda: journal(300, consent(60, 240, per_min=3))),
    "002-8.4-queue-down": (lambda: journal(400, store_unavailable(60, 300)),
                           lambda: journal(400, store_unavailable(60, 120))),  # 1 min < for 2m
    "002-8.4-failed-jobs": (lambda: journal(600, failed_jobs(12, at=30)), lambda: journal(600, failed_jobs(8, at=30))),
    "002-8.4-waiting-jobs": (lambda: journal(600, waiting_jobs(120, at=30)),
                             lambda: journal(600, waiting_jobs(90, at=30))),
    "002-8.4-sync-errors": (lambda: journal(600, sync_failures(30, 600, per_min=8)),
                            lambda: journal(600, sync_failures(30, 600, per_min=4))),
    "002-8.4-5xx-rate": (lambda: journal(400, requests(0, 400, error_every=10)),  # 10 %
                         lambda: journal(400, requests(0, 400, error_every=50))),  # 2 %
    "002-8.4-slow-api": (lambda: journal(900, ops(0, 900, ms=450.0)), lambda: journal(900, ops(0, 900, ms=200.0))),
    "002-8.3-job-errors": (lambda: journal(300, job_errors(30, 200, per_min=8)),
                           lambda: journal(300, job_errors(30, 200, per_min=3))),
    "002-7.2-high-failed-jobs": (lambda: journal(120, failed_jobs(60, at=10)),
                                 lambda: journal(120, failed_jobs(40, at=10))),
    "002-8.4-not-synced": (lambda: journal(1200, reconciliation(30, not_synced=150)),
                           lambda: journal(1200, reconciliation(30, not_synced=80))),
    "002-8.4-stale": (lambda: journal(1500, reconciliation(30, stale=60)),
                      lambda: journal(1500, reconciliation(30, stale=40))),
    "002-8.4-reconciliation-failures": (lambda: journal(300, reconciliation(100, errors=1)),
                                        lambda: journal(300, reconciliation(100, errors=0))),
    "002-8.4-audit-mirror-failures": (lambda: journal(300, audit_mirror(100, errors=2)),
                                      lambda: journal(300, audit_mirror(100, errors=0))),
    "002-8.4-slow-jobs": (lambda: journal(2400, completed_jobs(0, 2400, every=20, seconds=12, name="other")),
                          lambda: journal(2400, completed_jobs(0, 2400, every=20, seconds=5, name="other"))),
    "002-8.4-slow-sync": (lambda: journal(2400, completed_jobs(0, 2400, every=20, seconds=6)),
                          lambda: journal(2400, completed_jobs(0, 2400, every=20, seconds=2))),
}


def rule(rule_id: str, **options: object) -> AlertRule:
    return AlertRule.model_validate({"check": "alert_rule", "rule": rule_id, **options})


def test_every_observable_rule_has_cases() -> None:
    observable = {r.id for r in default_catalogue().rules if r.observable}
    assert observable == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_the_breaking_journal(rule_id: str) -> None:
    breaking, _ = CASES[rule_id]
    result = run(rule(rule_id), breaking())
    assert result.verdict == "fail", result.detail
    assert "firing" in result.detail
    assert run(rule(rule_id, fires=True), breaking()).verdict == "pass"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_stays_quiet_on_the_healthy_journal(rule_id: str) -> None:
    _, healthy = CASES[rule_id]
    result = run(rule(rule_id), healthy())
    assert result.verdict == "pass", result.detail
    assert result.source.startswith("002_437ee203264dfa64.txt §")
    assert run(rule(rule_id, fires=True), healthy()).verdict == "fail"


def test_for_duration_must_elapse_before_firing() -> None:
    """> 10 failed jobs for 5 min: retried after 170 s the alert was only pending."""
    retried = [job("job.retried", 200, f"j{i}") for i in range(12)]
    result = run(rule("002-8.4-failed-jobs"), journal(600, failed_jobs(12, at=30), retried))
    assert result.verdict == "pass", result.detail
    assert "held at most 150s" in result.detail  # pending from the 45 s evaluation to the 195 s one


def test_fires_within_counts_from_the_first_fault() -> None:
    events = journal(600, fault(20, 100, target="medplum"), failed_jobs(12, at=30))
    late = run(rule("002-8.4-failed-jobs", fires=True, within="2m"), events)
    assert late.verdict == "fail"  # 12 failed from 32 s, for 5 m: fires at 345 s, 325 s after the fault
    assert late.observed == pytest.approx(325.0)
    assert run(rule("002-8.4-failed-jobs", fires=True, within="6m"), events).verdict == "pass"


def test_steady_scope_ignores_fault_windows() -> None:
    events = journal(600, fault(0, 400, target="medplum"), requests(0, 400, error_every=2), requests(400, 600))
    assert run(rule("002-8.4-5xx-rate"), events).verdict == "fail"
    assert run(rule("002-8.4-5xx-rate", scope="steady", grace="1m"), events).verdict == "pass"


def test_vendor_restricts_per_vendor_series() -> None:
    events = journal(400, requests(0, 400, error_every=2, vendor="epic"), requests(0, 400, vendor="medplum"))
    assert run(rule("002-8.4-5xx-rate", vendor="epic"), events).verdict == "fail"
    assert run(rule("002-8.4-5xx-rate", vendor="medplum"), events).verdict == "pass"


@pytest.mark.parametrize(("options", "message"), [
    ({"rule": "002-8.4-nope"}, "unknown alert rule '002-8.4-nope'"),
    ({"rule": "002-8.4-api-down"}, "cannot be evaluated over the journal"),
    ({"rule": "002-8.4-failed-jobs", "within": "1m"}, "within applies only with fires: true"),
    ({"rule": "002-8.4-failed-jobs", "vendor": "epic"}, "is not per vendor"),
])
def test_bad_alert_rule_expectations_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertRule.model_validate({"check": "alert_rule", **options})
