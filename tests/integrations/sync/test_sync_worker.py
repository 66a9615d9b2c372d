"""The sync worker (runbook 002 §1.3 "Outbound Sync", §2.3): If-Match upserts, `last_synced_at`, the
FHIR_SYNC audit with its correlation id, retries through a Medplum outage, and writes that never fail or
block when the enqueue does."""

from __future__ import annotations

from collections.abc import Sequence

from harness.clock import run_virtual
from integrations.events import JobRetryScheduled, SyncCompleted, SyncEnqueueFailed, SyncFailed
from integrations.queue import JobState, QueueOptions, SqliteStore, StoreUnavailable
from integrations.queue.model import NewJob
from integrations.sync import AuditEventType, RecordKind
from tests.integrations.sync.support import ORG, assert_no_phi, encounter, observation, sync_lab


def test_a_second_sync_of_an_updated_record_sends_if_match_and_bumps_the_version() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            record = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            assert record.last_synced_at is None
            await lab.drain()
            first = lab.store.get(RecordKind.ENCOUNTER, record.id)
            assert first is not None
            assert first.fhir_resource_id == "enc-0000000001"
            assert first.last_synced_at is not None
            assert first.fhir_version == lab.medplum("Encounter")[0]["meta"]["versionId"]
            [create] = lab.recorder.puts("/fhir/R4/Encounter/")
            assert create.if_match is None  # the first sync creates at the client-assigned id

            await lab.advance(30)
            updated = await lab.store.update_encounter(record.id, encounter(status="cancelled"))
            await lab.drain()
            second = lab.store.get(RecordKind.ENCOUNTER, record.id)
            assert second is not None
            _, update = lab.recorder.puts("/fhir/R4/Encounter/")
            assert update.if_match == f'W/"{first.fhir_version}"'
            [stored] = lab.medplum("Encounter")
            assert stored["status"] == "cancelled"
            assert second.fhir_version == stored["meta"]["versionId"] != first.fhir_version
            assert second.last_synced_at is not None
            assert second.last_synced_at >= updated.updated_at > first.last_synced_at
            # the Patient is upserted once per token, not once per job
            assert len(lab.recorder.puts("/fhir/R4/Patient/")) == 1

            syncs = lab.audit.search(event_types=[AuditEventType.FHIR_SYNC])
            assert [a.resource_id for a in syncs] == [record.id, record.id]
            completed = lab.of(SyncCompleted)
            assert [c.created for c in completed] == [True, False]
            assert {a.correlation_id for a in syncs} == {c.correlation_id for c in completed}
            assert all(a.correlation_id.startswith("sync-encounter-sync:enc_0000000001:") for a in syncs)
            assert_no_phi(lab)

    run_virtual(main)


def test_a_version_conflict_is_merged_with_the_local_record_winning() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            record = await lab.store.create_observation(ORG, "pt_abc123", observation(value=37.0))
            await lab.drain()
            # someone else writes Medplum's copy: our stored version is now stale
            lab.simulator.store.modify("Observation", "obs-0000000001", lambda r: {**r, "status": "amended"})
            await lab.store.update_observation(record.id, observation(value=38.5))
            await lab.drain()
            [stored] = lab.medplum("Observation")
            assert stored["valueQuantity"]["value"] == 38.5
            assert stored["status"] == "final"
            statuses = [s for m, p, s in lab.fhir_requests("PUT") if p.startswith("/fhir/R4/Observation")]
            assert statuses == [201, 412, 200]

    run_virtual(main)


def test_a_medplum_outage_makes_jobs_retry_then_succeed() -> None:
    async def main() -> None:
        async with sync_lab(queue_options=QueueOptions(attempts=3)) as lab:
            lab.patient("pt_abc123")
            answer = await lab.admin.put("/admin/chaos/fail-next", json={
                "count": 3, "status": 503, "scope": {"path": "/fhir/R4/Encounter", "method": "PUT"}})
            assert answer.status_code == 200, answer.text
            record = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            await lab.drain()
            [job] = await lab.queue.jobs(JobState.COMPLETED)
            assert job.attempts_made == 1  # one failed attempt (the connector's 3 tries), then success
            assert [r.error for r in lab.of(JobRetryScheduled)] == ["ServerError"]
            assert [f.error for f in lab.of(SyncFailed)] == ["ServerError"]
            failed = lab.audit.search(event_types=[AuditEventType.FHIR_SYNC_FAILED])
            assert [(a.resource_id, a.outcome, a.detail) for a in failed] == [(record.id, "failure", "ServerError")]
            synced = lab.store.get(RecordKind.ENCOUNTER, record.id)
            assert synced is not None
            assert synced.last_synced_at is not None
            assert len(lab.medplum("Encounter")) == 1
            statuses = [s for _, p, s in lab.fhir_requests("PUT") if p.startswith("/fhir/R4/Encounter")]
            assert statuses == [503, 503, 503, 201]
            assert_no_phi(lab)

    run_virtual(main)


class BrokenStore(SqliteStore):
    """A queue store that cannot be reached (Redis down)."""

    def __init__(self) -> None:
        super().__init__(":memory:", "fhir-sync")
        self.calls = 0

    async def add(self, jobs: Sequence[NewJob]) -> list[tuple[object, bool]]:  # type: ignore[override]
        self.calls += 1
        raise StoreUnavailable("the store is down", queue="fhir-sync", operation="add")


class HangingStore(SqliteStore):
    """A queue store that never answers."""

    def __init__(self) -> None:
        super().__init__(":memory:", "fhir-sync")

    async def add(self, jobs: Sequence[NewJob]) -> list[tuple[object, bool]]:  # type: ignore[override]
        import asyncio

        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_writes_never_fail_when_the_enqueue_fails() -> None:
    async def main() -> None:
        store = BrokenStore()
        async with sync_lab(store=store) as lab:
            lab.patient("pt_abc123")
            enc = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            obs = await lab.store.create_observation(ORG, "pt_abc123", observation())
            await lab.store.update_encounter(enc.id, encounter(status="cancelled"))
            assert store.calls == 3
            assert lab.store.get(RecordKind.ENCOUNTER, enc.id) is not None
            assert lab.store.get(RecordKind.OBSERVATION, obs.id) is not None
            assert [(e.kind, e.record_id, e.error) for e in lab.of(SyncEnqueueFailed)] == [
                ("encounter", enc.id, "StoreUnavailable"), ("observation", obs.id, "StoreUnavailable"),
                ("encounter", enc.id, "StoreUnavailable")]
            assert lab.store.counts(RecordKind.ENCOUNTER).not_synced == 1

    run_virtual(main)


def test_writes_never_block_on_a_hanging_enqueue() -> None:
    async def main() -> None:
        async with sync_lab(store=HangingStore()) as lab:
            lab.patient("pt_abc123")
            started = lab.clock.monotonic()
            record = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            assert lab.clock.monotonic() - started <= 2.0 + 1e-6  # the enqueue timeout, not forever
            assert lab.store.get(RecordKind.ENCOUNTER, record.id) is not None
            assert [e.error for e in lab.of(SyncEnqueueFailed)] == ["TimeoutError"]

    run_virtual(main)


def test_a_job_for_a_vanished_record_fails_at_once() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            await lab.queue.add("encounter-sync", {"record_id": "enc_0000000099", "org_id": ORG})
            await lab.queue.add("observation-sync", {"oops": 1})
            await lab.drain()
            failed = await lab.queue.failed_jobs()
            assert sorted(j.attempts_made for j in failed) == [1, 1]
            assert lab.fhir_requests() == []

    run_virtual(main)


def test_every_update_gets_its_own_job_even_at_one_instant() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            record = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            first = await lab.store.update_encounter(record.id, encounter(status="cancelled"))
            second = await lab.store.update_encounter(record.id, encounter(status="finished"))
            assert record.updated_at < first.updated_at < second.updated_at  # no virtual time passed
            jobs = await lab.queue.jobs(JobState.WAITING)
            assert len({j.id for j in jobs}) == 3
            assert all(j.id.startswith(f"encounter-sync:{record.id}:") for j in jobs)
            assert all(j.data == {"record_id": record.id, "org_id": ORG} for j in jobs)

    run_virtual(main)


def test_a_duplicated_sync_job_is_harmless() -> None:
    """At-least-once (the crash test's duplicates): a worker killed after Medplum wrote but before the sync
    was recorded runs the same job again elsewhere. The upsert makes it harmless: one resource, the local
    record's content, and the local version matching Medplum's."""

    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            record = await lab.store.create_encounter(ORG, "pt_abc123", encounter())
            update = await lab.store.update_encounter(record.id, encounter(status="cancelled"))
            jobs = sorted(await lab.queue.jobs(JobState.WAITING), key=lambda j: j.id)
            assert len(jobs) == 2
            real_mark = lab.store.mark_synced

            def killed(*args: object, **kwargs: object) -> None:
                raise RuntimeError("SIGKILL after Medplum wrote, before the sync was recorded")

            for job in jobs:  # each job: a run killed before recording, then its duplicate
                lab.store.mark_synced = killed  # type: ignore[method-assign]
                try:
                    await lab.sync.sync(RecordKind.ENCOUNTER, job)
                    raise AssertionError("the first run should have died")
                except RuntimeError:
                    pass
                lab.store.mark_synced = real_mark  # type: ignore[method-assign]
                await lab.sync.sync(RecordKind.ENCOUNTER, job)

            [stored] = lab.medplum("Encounter")
            [patient] = lab.medplum("Patient")
            assert patient["id"] == "pt-abc123"
            assert stored["status"] == "cancelled" == update.details.status
            local = lab.store.get(RecordKind.ENCOUNTER, record.id)
            assert local is not None
            assert local.fhir_version == stored["meta"]["versionId"]
            statuses = [s for _, p, s in lab.fhir_requests("PUT") if p.startswith("/fhir/R4/Encounter")]
            # job 1: created, then a plain PUT again (no version was recorded); job 2: If-Match on the version
            # job 1 recorded (Medplum's is newer: 412, merged with the local record winning), twice
            assert statuses == [201, 200, 200, 412, 200]
            assert len({p for _, p, _ in lab.fhir_requests("PUT") if p.startswith("/fhir/R4/Encounter")}) == 1
            assert_no_phi(lab)

    run_virtual(main)
