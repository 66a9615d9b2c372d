"""Stalled-job recovery on both stores, in virtual time: a job whose worker died is taken back once its lock
expires and runs again; past `max_stalled_count` it fails with BullMQ's reason; a live worker's lock is
renewed so a long job is never taken from it; a worker that lost its lock has its outcome discarded."""

from __future__ import annotations

from harness.clock import run_virtual
from integrations.events import JobCompleted, JobLockLost, JobStalled, JobStarted
from integrations.queue import STALLED_REASON, Job, JobState, JsonValue, KeepJobs
from integrations.queue.model import ClaimRequest, now_ms
from tests.integrations.queue.conftest import StoreFactory
from tests.integrations.queue.support import Rig, noop


async def dead_worker_claims(rig: Rig, lock_s: float = 30.0) -> list[Job]:
    """A worker that claims what is waiting and then dies: it never renews, completes or fails anything."""
    now = now_ms(rig.clock)
    claim = await rig.store.claim(ClaimRequest(now_ms=now, token="dead", lock_until_ms=now + int(lock_s * 1000),
                                               limit=100))
    return claim.jobs


def test_a_dead_workers_job_is_taken_back_after_its_lock_expires(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", "x")
        [taken] = await dead_worker_claims(rig, lock_s=30.0)
        assert taken.id == job.id
        assert (await rig.queue.stats()).active == 1
        async with rig.worker({"encounter-sync": noop}, stalled_interval_s=5.0, lock_duration_s=30.0):
            await rig.until_idle(step_s=0.5)
        [stalled] = rig.of(JobStalled)
        assert (stalled.job_id, stalled.stalled_count, stalled.failed) == (job.id, 1, False)
        [recovered_at] = rig.times(JobStalled)
        assert 30.0 < recovered_at <= 35.0  # the first check after the lock expired
        [started] = rig.of(JobStarted)
        assert started.attempt == 1  # a stall is not a failed attempt
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.state == JobState.COMPLETED
        assert done.stalled_count == 1

    run_virtual(main)


def test_a_stalled_job_goes_to_the_front_of_the_queue(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        first = await rig.queue.add("encounter-sync", 1)
        await dead_worker_claims(rig, lock_s=1.0)
        later = [(await rig.queue.add("encounter-sync", i)).id for i in range(3)]
        await rig.clock.sleep(2.0)
        order: list[str] = []

        async def record(job: Job) -> JsonValue:
            order.append(job.id)
            return None

        async with rig.worker({"encounter-sync": record}, concurrency=1):
            await rig.until_idle()
        assert order == [first.id, *later]

    run_virtual(main)


def test_a_job_that_stalls_more_than_the_maximum_fails(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", "x")
        for _ in range(2):  # max_stalled_count 1 (BullMQ's default): the second stall fails it
            await dead_worker_claims(rig, lock_s=1.0)
            await rig.clock.sleep(1.5)
            stalled = await rig.store.recover_stalled(now_ms(rig.clock), 1, KeepJobs())
            assert [s.id for s in stalled] == [job.id]
        assert [s.failed for s in stalled] == [True]
        assert stalled[0].stalled_count == 2
        failed = await rig.queue.get_job(job.id)
        assert failed is not None
        assert failed.state == JobState.FAILED
        assert failed.failed_reason == STALLED_REASON
        assert (await rig.queue.failed_jobs())[0].id == job.id

    run_virtual(main)


def test_the_worker_reports_the_max_stalled_failure(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", "x")
        await dead_worker_claims(rig, lock_s=1.0)
        async with rig.worker({"encounter-sync": noop}, stalled_interval_s=1.0, lock_duration_s=1.0,
                              max_stalled_count=0):
            await rig.until_idle(step_s=0.25)
        [stalled] = rig.of(JobStalled)
        assert (stalled.job_id, stalled.failed) == (job.id, True)
        assert not rig.of(JobStarted)
        assert (await rig.queue.stats()).failed == 1

    run_virtual(main)


def test_a_live_worker_renews_its_lock_through_a_long_job(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))

        async def long(job: Job) -> JsonValue:
            await rig.clock.sleep(100.0)
            return "done"

        await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": long}, name="a", lock_duration_s=10.0, stalled_interval_s=2.0), \
                rig.worker({"encounter-sync": long}, name="b", seed=2, lock_duration_s=10.0, stalled_interval_s=2.0):
            await rig.until_idle(step_s=1.0)
        assert not rig.of(JobStalled)
        assert len(rig.of(JobStarted)) == 1
        assert len(rig.of(JobCompleted)) == 1

    run_virtual(main)


def test_a_worker_that_lost_its_lock_has_its_outcome_discarded(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        release = [False]

        async def wait_for_release(job: Job) -> JsonValue:
            while not release[0]:
                await rig.clock.sleep(0.1)
            return "late"

        job = await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": wait_for_release}, name="slow", concurrency=1, lock_duration_s=30.0):
            await rig.clock.sleep(1.0)
            # Another worker's stalled check, run as if its lock had expired (a long GC pause, say).
            far_future = now_ms(rig.clock) + 3_600_000
            assert [s.id for s in await rig.store.recover_stalled(far_future, 1, KeepJobs())] == [job.id]
            async with rig.worker({"encounter-sync": noop}, name="fast", seed=2):
                await rig.clock.sleep(1.0)
            release[0] = True
            await rig.until_idle()
        [lost] = rig.of(JobLockLost)
        assert (lost.job_id, lost.worker) == (job.id, "slow")
        [completed] = rig.of(JobCompleted)
        assert completed.worker == "fast"
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.result is None

    run_virtual(main)


def test_close_with_timeout_leaves_unfinished_jobs_to_their_lock(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))

        async def forever(job: Job) -> JsonValue:
            await rig.clock.sleep(10_000.0)
            return None

        await rig.queue.add("encounter-sync")
        worker = rig.worker({"encounter-sync": forever}, lock_duration_s=5.0)
        worker.start()
        await rig.clock.sleep(1.0)
        await worker.close(timeout_s=2.0)
        assert (await rig.queue.stats()).active == 1  # as after a crash
        async with rig.worker({"encounter-sync": noop}, seed=2, stalled_interval_s=1.0):
            await rig.until_idle(step_s=0.5)
        assert len(rig.of(JobStalled)) == 1
        assert len(rig.of(JobCompleted)) == 1

    run_virtual(main)


def test_a_job_lost_and_claimed_again_by_the_same_worker_keeps_both_runs_apart(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        release = [False]
        calls = 0

        async def twice(job: Job) -> JsonValue:
            nonlocal calls
            calls += 1
            if calls == 1:
                while not release[0]:
                    await rig.clock.sleep(0.1)
                return "first"
            await rig.clock.sleep(100.0)  # far past the lock: only renewal keeps it
            return "second"

        job = await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": twice}, concurrency=2, lock_duration_s=10.0, stalled_interval_s=2.0):
            await rig.clock.sleep(1.0)
            await rig.store.recover_stalled(now_ms(rig.clock) + 3_600_000, 1, KeepJobs())
            await rig.clock.sleep(2.0)  # the worker's next poll claims it again
            release[0] = True
            await rig.until_idle(step_s=1.0)
        assert calls == 2
        assert [e.job_id for e in rig.of(JobLockLost)] == [job.id]
        assert not rig.of(JobStalled)
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.result == "second"

    run_virtual(main)
