"""Data loss counts records lost, not jobs failed (issue 13: a run was classed P0 "data loss: 22 of 619 jobs
failed for good" although reconciliation had re-synced exactly those 22 records and
`no_job_lost_or_duplicated` passed)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.result import CheckResult
from harness.journal import Event, FhirSyncEvent, ReconciliationEvent
from harness.report.derived import scenario_items
from harness.report.incident import render_incident, scenario_severity
from harness.report.records import account
from harness.report.severity import Severity
from tests.harness.report.builders import check, scenario, summary_for, sync_job

JOBS_OK = 597
FAILED = 22
INVARIANT = check("invariant[no_job_lost_or_duplicated]", kind="invariant")


def _first_pass(failed: int = FAILED) -> list[Event]:
    """597 sync jobs, the first `failed` of them failed for good while Medplum was down."""
    events: list[Event] = []
    for i in range(JOBS_OK):
        events += sync_job(1.0 + i * 0.1, f"encounter-sync:enc_{i:04d}:1", f"enc_{i:04d}", ok=i >= failed)
    return events


def _reconciliation(records: int = FAILED, ok: bool = True) -> list[Event]:
    """Reconciliation finds the never-synced records and re-queues them; the new jobs sync them (or fail)."""
    events: list[Event] = [ReconciliationEvent(t=100.0, encounters_not_synced=records, encounters_stale=0,
                                               observations_not_synced=0, observations_stale=0, enqueued=records,
                                               errors=0, duration_ms=12.0)]
    for i in range(records):
        events += sync_job(101.0 + i * 0.1, f"encounter-sync:enc_{i:04d}:1:reconcile-100000", f"enc_{i:04d}", ok=ok)
    return events


def _judge(events: list[Event], checks: Sequence[CheckResult] = (INVARIANT,)) -> tuple[Severity, str]:
    summary = summary_for([("s", list(checks))])
    items = scenario_items(summary, events)
    return scenario_severity(items[0]), render_incident(summary, items)


def test_failed_jobs_re_synced_by_reconciliation_are_not_data_loss() -> None:
    """The regression: 22 of 619 jobs failed for good, reconciliation re-synced exactly those 22 records."""
    events = scenario([*_first_pass(), *_reconciliation()])
    severity, md = _judge(events)
    assert severity.level == "P3"
    assert not any("data loss" in r for r in severity.reasons)
    assert "- Data loss: No (0 record(s) lost; 22 of 619 jobs failed for good, 22 of them synced later" in md
    assert "P0" not in md


def test_records_never_synced_after_their_jobs_failed_are_data_loss_p0() -> None:
    severity, md = _judge(scenario(_first_pass()))
    assert severity.level == "P0"
    assert severity.rules == ("records-lost",)
    assert severity.reasons == ("data loss: 22 record(s) lost (22 never synced after their job failed for good); "
                                "22 of 597 jobs failed for good",)
    assert "- Data loss: Yes (22 record(s) lost" in md
    assert "  - lost: encounter enc_0000: job encounter-sync:enc_0000:1 failed for good (ServerError) at T+0:01.2" in md
    assert "  - ... and 17 more" in md


def test_reconciliation_whose_own_jobs_fail_loses_the_records() -> None:
    severity, _ = _judge(scenario([*_first_pass(), *_reconciliation(ok=False)]))
    assert (severity.level, severity.reasons[0].startswith("data loss: 22 record(s) lost")) == ("P0", True)


def test_one_record_left_unsynced_is_one_record_lost() -> None:
    severity, _ = _judge(scenario([*_first_pass(), *_reconciliation(records=21)]))
    assert severity.level == "P0"
    assert severity.reasons[0].startswith("data loss: 1 record(s) lost (1 never synced after their job failed for "
                                          "good); 22 of 618 jobs failed for good, 21 of them synced later")


def test_a_sync_before_the_failure_does_not_save_the_record() -> None:
    """The record's older version was synced; the job carrying its update failed for good: the update is lost."""
    events = scenario([*sync_job(1.0, "encounter-sync:enc_1:1", "enc_1"),
                       *sync_job(5.0, "encounter-sync:enc_1:2", "enc_1", ok=False)])
    fate = account(events)
    assert (fate.jobs, fate.jobs_failed, fate.resynced, [r.record_id for r in fate.lost]) == (2, 1, 0, ["enc_1"])


def test_a_later_job_for_the_same_record_saves_it() -> None:
    events = scenario([*sync_job(1.0, "encounter-sync:enc_1:1", "enc_1", ok=False),
                       *sync_job(5.0, "encounter-sync:enc_1:2", "enc_1")])
    fate = account(events)
    assert (fate.jobs_failed, fate.resynced, fate.lost) == (1, 1, ())


def test_a_record_that_could_not_be_enqueued_is_lost_unless_synced_later() -> None:
    unqueued = FhirSyncEvent(t=2.0, kind="fhir_sync.enqueue_failed", resource="observation", record_id="obs_1",
                             error="QueueStoreUnavailable")
    fate = account(scenario([unqueued]))
    assert [(r.resource, r.record_id, r.via) for r in fate.lost] == [("observation", "obs_1", "enqueue")]
    later = sync_job(50.0, "observation-sync:obs_1:1:reconcile-50000", "obs_1", resource="observation")
    assert account(scenario([unqueued, *later])).lost == ()
    severity, _ = _judge(scenario([unqueued]))
    assert severity.reasons[0].startswith("data loss: 1 record(s) lost (1 never enqueued nor synced)")


def test_consent_refusals_are_consent_enforced_not_loss() -> None:
    """002 §3.2: a revoked patient's jobs fail without retry and its records are not enqueued, by design."""
    refused_job = sync_job(1.0, "encounter-sync:enc_1:1", "enc_1", ok=False, error="ConsentDenied")
    refused_enqueue = FhirSyncEvent(t=2.0, kind="fhir_sync.enqueue_failed", resource="encounter", record_id="enc_2",
                                    error="ConsentDenied")
    events = scenario([*refused_job, refused_enqueue, *sync_job(3.0, "encounter-sync:enc_3:1", "enc_3")])
    fate = account(events)
    assert (fate.jobs, fate.jobs_failed, fate.consent_refused, fate.lost) == (1, 0, 2, ())
    severity, md = _judge(events)
    assert severity.level == "P3"
    assert "2 job(s) or enqueue(s) refused for consent: consent enforced, not data loss (002 §3.2)" in md


def test_a_failed_job_no_sync_event_ties_to_a_record_counts_as_lost() -> None:
    """Nothing shows its record synced (its worker died before the handler ran): one record of unknown id."""
    added, started, _, failed = sync_job(1.0, "j1", "enc_1", ok=False)
    events = scenario([added, started, failed])
    fate = account(events)
    assert [(r.resource, r.record_id) for r in fate.lost] == [("unknown", "j1")]
    severity, _ = _judge(events)
    assert "1 failed job(s) no sync event ties to a record" in severity.reasons[0]


def test_a_failed_job_invariant_is_data_loss_even_without_lost_records() -> None:
    severity, md = _judge(scenario(_first_pass(0)), [check("invariant[no_job_lost_or_duplicated]", passed=False,
                                                           kind="invariant")])
    assert (severity.level, severity.rules) == ("P0", ("jobs-lost-or-duplicated",))
    assert "  - check `invariant[no_job_lost_or_duplicated]` failed (jobs lost or duplicated)" in md
