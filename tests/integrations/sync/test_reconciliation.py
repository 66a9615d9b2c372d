"""Reconciliation (runbook 002 §2.4, §6.3, §7.2 Scenario 2): drift from writes made while sync was off and
from jobs that were dropped is found (never synced, stale), repaired in one run plus draining the queue,
and reported in the runbook's shapes."""

from __future__ import annotations

from harness.clock import run_virtual
from integrations.events import ConsentChecked, ReconciliationCompleted
from integrations.queue import JobState, QueueOptions
from integrations.sync import AuditEventType, ReconciliationResult, RecordKind
from tests.integrations.sync.support import ORG, OTHER_ORG, SyncLab, assert_no_phi, encounter, observation, sync_lab

DAY = 86_400.0


def _shape(result: ReconciliationResult) -> None:
    body = result.to_json()
    assert list(body) == ["startTime", "endTime", "durationMs", "encounters", "observations", "errors"]
    for kind in ("encounters", "observations"):
        part = body[kind]
        assert isinstance(part, dict)
        assert list(part) == ["total", "notSynced", "stale", "enqueued", "errors"]
    assert isinstance(body["startTime"], str)
    assert body["startTime"].endswith("Z")


def _stats(lab: SyncLab) -> dict[str, object]:
    return lab.reconciler.stats(stale_window_s=DAY).to_json()


def test_writes_made_while_sync_was_off_converge_in_one_run() -> None:
    async def main() -> None:
        async with sync_lab(enqueue=False) as lab:
            lab.patient("pt_drift1")
            lab.patient("pt_drift2", OTHER_ORG)
            for _ in range(2):
                await lab.store.create_encounter(ORG, "pt_drift1", encounter())
            for _ in range(3):
                await lab.store.create_observation(ORG, "pt_drift1", observation())
            await lab.store.create_observation(OTHER_ORG, "pt_drift2", observation())
            assert (await lab.queue.stats()).waiting == 0
            assert _stats(lab) == {"encounters": {"total": 2, "synced": 0, "notSynced": 2, "stale": 0},
                                   "observations": {"total": 4, "synced": 0, "notSynced": 4, "stale": 0}}

            result = await lab.reconciler.run(batch_size=2, org_id=ORG)  # batches smaller than the backlog
            _shape(result)
            assert result.encounters.to_json() == {"total": 2, "notSynced": 2, "stale": 0, "enqueued": 2, "errors": 0}
            assert result.observations.to_json() == {"total": 3, "notSynced": 3, "stale": 0, "enqueued": 3,
                                                     "errors": 0}
            assert result.errors == ()
            await lab.drain()
            assert lab.reconciler.stats(ORG, DAY).to_json() == {
                "encounters": {"total": 2, "synced": 2, "notSynced": 0, "stale": 0},
                "observations": {"total": 3, "synced": 3, "notSynced": 0, "stale": 0}}
            assert lab.reconciler.stats(OTHER_ORG, DAY).observations.not_synced == 1  # out of the run's scope
            assert len(lab.medplum("Encounter")) == 2
            assert len(lab.medplum("Observation")) == 3

            again = await lab.reconciler.run(org_id=ORG)
            assert again.encounters.enqueued + again.observations.enqueued == 0
            history = lab.reconciler.history()
            assert [h.result.observations.enqueued for h in history] == [0, 3]
            assert history[1].org_id == ORG
            assert history[1].batch_size == 2
            assert history[1].to_json()["encounters"] == result.encounters.to_json()
            audits = lab.audit.search(event_types=[AuditEventType.FHIR_RECONCILIATION])
            assert [a.resource_count for a in audits] == [0, 5]
            assert [e.enqueued for e in lab.of(ReconciliationCompleted)] == [5, 0]
            assert_no_phi(lab)

    run_virtual(main)


def test_stale_records_changed_while_their_sync_was_disabled_are_found() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_stale1")
            record = await lab.store.create_encounter(ORG, "pt_stale1", encounter())
            fresh = await lab.store.create_observation(ORG, "pt_stale1", observation())
            await lab.drain()
            lab.store.set_sync_enabled(RecordKind.ENCOUNTER, record.id, False)
            await lab.advance(2 * DAY)
            await lab.store.update_encounter(record.id, encounter(status="cancelled"))
            assert (await lab.queue.stats()).waiting == 0  # disabled: no job
            assert lab.reconciler.stats(stale_window_s=DAY).encounters.total == 0  # disabled ones are not counted
            lab.store.set_sync_enabled(RecordKind.ENCOUNTER, record.id, True)
            assert _stats(lab)["encounters"] == {"total": 1, "synced": 0, "notSynced": 0, "stale": 1}

            result = await lab.reconciler.run(stale_window_s=DAY)
            assert (result.encounters.stale, result.encounters.enqueued) == (1, 1)
            assert (result.observations.stale, result.observations.not_synced) == (0, 0)
            await lab.drain()
            assert _stats(lab)["encounters"] == {"total": 1, "synced": 1, "notSynced": 0, "stale": 0}
            assert lab.medplum("Encounter")[0]["status"] == "cancelled"
            untouched = lab.store.get(RecordKind.OBSERVATION, fresh.id)
            assert untouched is not None
            assert untouched.last_synced_at == fresh.updated_at  # synced once, at creation

    run_virtual(main)


def test_records_whose_jobs_were_dropped_converge_in_one_run() -> None:
    async def main() -> None:
        async with sync_lab(queue_options=QueueOptions(attempts=1)) as lab:
            lab.patient("pt_lost1")
            synced = await lab.store.create_observation(ORG, "pt_lost1", observation(value=36.6))
            await lab.drain()
            await lab.advance(2 * DAY)
            answer = await lab.admin.put("/admin/chaos/outage", json={"mode": "status", "status": 503})
            assert answer.status_code == 200, answer.text
            lost = await lab.store.create_encounter(ORG, "pt_lost1", encounter())
            await lab.store.update_observation(synced.id, observation(value=39.1))
            await lab.drain()
            assert (await lab.queue.stats()).failed == 2
            assert await lab.queue.clean(JobState.FAILED) == 2  # the failed jobs are gone: nothing will retry them
            assert (await lab.admin.delete("/admin/chaos/outage")).status_code == 200
            await lab.advance(120)  # past the breaker's open state
            assert _stats(lab) == {"encounters": {"total": 1, "synced": 0, "notSynced": 1, "stale": 0},
                                   "observations": {"total": 1, "synced": 0, "notSynced": 0, "stale": 1}}

            result = await lab.reconciler.run(stale_window_s=DAY)
            assert (result.encounters.not_synced, result.observations.stale) == (1, 1)
            await lab.drain()
            assert _stats(lab) == {"encounters": {"total": 1, "synced": 1, "notSynced": 0, "stale": 0},
                                   "observations": {"total": 1, "synced": 1, "notSynced": 0, "stale": 0}}
            assert lab.medplum("Observation")[0]["valueQuantity"]["value"] == 39.1
            assert [e["id"] for e in lab.medplum("Encounter")] == [lost.id.replace("_", "-")]
            assert (await lab.queue.stats()).failed == 0

    run_virtual(main)


def test_ingested_records_are_never_reconciled() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_ext1")
            lab.store.ingest_observation(ORG, "pt_ext1", observation())
            result = await lab.reconciler.run()
            assert result.observations.to_json() == {"total": 0, "notSynced": 0, "stale": 0, "enqueued": 0,
                                                     "errors": 0}
            assert (await lab.queue.stats()).waiting == 0

    run_virtual(main)


def test_records_of_a_patient_without_consent_are_found_but_not_enqueued() -> None:
    """A revoked patient's never-synced records stay unsynced (the runbook's count says so) but get no job: its
    job could only fail at the gate, a counted denial each, and a nightly run would page 002 §8.4's P1."""

    async def main() -> None:
        async with sync_lab(enqueue=False) as lab:
            lab.patient("pt_keeps")
            lab.patient("pt_revokes")
            for token in ("pt_keeps", "pt_revokes"):
                await lab.store.create_encounter(ORG, token, encounter())
                await lab.store.create_observation(ORG, token, observation())
            lab.consents.revoke("pt_revokes", ORG)
            checks_before = len(lab.of(ConsentChecked))
            result = await lab.reconciler.run(org_id=ORG)
            assert result.encounters.to_json() == {"total": 2, "notSynced": 2, "stale": 0, "enqueued": 1, "errors": 0}
            assert result.observations.enqueued == 1
            assert len(lab.of(ConsentChecked)) == checks_before  # reading consent here is no access attempt
            await lab.drain()
            assert lab.gate.counts().denied == 0
            assert len(lab.medplum("Encounter")) == 1

    run_virtual(main)
