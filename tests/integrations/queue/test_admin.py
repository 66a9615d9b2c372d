"""The operator's side on both stores (runbook 002_437ee203264dfa64.txt §2.2, §6.3, §7.2): stats, failed-job
listing, retry of one or all failed jobs, de-duplication by job id, retention by age and count, clean."""

from __future__ import annotations

import pytest

from harness.clock import run_virtual
from integrations.events import JobDuplicated, JobRetried, JobsRemoved
from integrations.queue import (
    DAY_S,
    InvalidJobState,
    Job,
    JobNotFound,
    JobSpec,
    JobState,
    JsonValue,
    KeepJobs,
    QueueOptions,
    QueueStats,
)
from tests.integrations.queue.conftest import StoreFactory
from tests.integrations.queue.support import Rig, noop


async def fails(job: Job) -> JsonValue:
    raise RuntimeError("Medplum connection timeout")


def test_queue_defaults_are_the_runbook_s() -> None:
    options = QueueOptions()
    assert options.attempts == 3
    assert (options.backoff.kind, options.backoff.delay_s) == ("exponential", 1.0)
    assert options.keep_completed == KeepJobs(age_s=7 * DAY_S)
    assert options.keep_failed == KeepJobs(age_s=30 * DAY_S)


def test_stats_count_every_state(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        assert await rig.queue.stats() == QueueStats(0, 0, 0, 0, 0, 0)
        await rig.queue.add("ok-sync")
        await rig.queue.add("bad-sync", attempts=1)
        async with rig.worker({"ok-sync": noop, "bad-sync": fails}):
            await rig.until_idle()

        async def hold(job: Job) -> JsonValue:
            await rig.clock.sleep(100.0)
            return None

        await rig.queue.add("slow-sync")
        await rig.queue.add("later-sync", delay_s=60.0)
        worker = rig.worker({"slow-sync": hold}, concurrency=1)
        worker.start()
        await rig.clock.sleep(1.0)
        await rig.queue.add("slow-sync")
        await rig.queue.add("slow-sync")
        assert await rig.queue.stats() == QueueStats(waiting=2, active=1, completed=1, failed=1, delayed=1, paused=0)
        await rig.queue.pause()
        assert await rig.queue.stats() == QueueStats(waiting=0, active=1, completed=1, failed=1, delayed=1, paused=2)
        assert (await rig.queue.stats()).pending == 4
        await worker.close(timeout_s=0.0)

    run_virtual(main)


def test_failed_jobs_are_listed_newest_first_with_their_reason(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(4):
            await rig.queue.add("encounter-sync", {"encounter": f"enc_{i}"}, attempts=1)
            async with rig.worker({"encounter-sync": fails}):
                await rig.until_idle()
            await rig.clock.sleep(1.0)
        listed = await rig.queue.failed_jobs(limit=3)
        assert [j.data for j in listed] == [{"encounter": f"enc_{i}"} for i in (3, 2, 1)]
        assert {j.failed_reason for j in listed} == {"RuntimeError: Medplum connection timeout"}
        assert all(j.attempts_made == 1 for j in listed)
        assert [j.data for j in await rig.queue.failed_jobs(limit=3, offset=3)] == [{"encounter": "enc_0"}]

    run_virtual(main)


def test_jobs_list_each_state_in_its_order(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        ids = [(await rig.queue.add("encounter-sync", i)).id for i in range(5)]
        later = await rig.queue.add("encounter-sync", delay_s=9.0)
        sooner = await rig.queue.add("encounter-sync", delay_s=3.0)
        assert [j.id for j in await rig.queue.jobs(JobState.WAITING)] == ids
        assert [j.id for j in await rig.queue.jobs(JobState.WAITING, limit=2, offset=1)] == ids[1:3]
        assert [j.id for j in await rig.queue.jobs(JobState.DELAYED)] == [sooner.id, later.id]
        assert await rig.queue.jobs(JobState.COMPLETED) == []

    run_virtual(main)


def test_retry_one_failed_job_resets_its_attempts(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", attempts=2)
        healthy = [False]

        async def until_fixed(job: Job) -> JsonValue:
            if not healthy[0]:
                raise RuntimeError("down")
            return "synced"

        async with rig.worker({"encounter-sync": until_fixed}):
            await rig.until_idle()
            assert (await rig.queue.stats()).failed == 1
            healthy[0] = True
            retried = await rig.queue.retry(job.id)
            assert retried.state == JobState.FAILED
            assert retried.attempts_made == 2
            await rig.until_idle()
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.state == JobState.COMPLETED
        assert done.attempts_made == 0
        assert [e.job_id for e in rig.of(JobRetried)] == [job.id]

    run_virtual(main)


def test_retry_refuses_unknown_and_unfailed_jobs(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync")
        with pytest.raises(JobNotFound) as missing:
            await rig.queue.retry("nope")
        assert missing.value.job_id == "nope"
        assert missing.value.queue == "sync"
        with pytest.raises(InvalidJobState) as wrong:
            await rig.queue.retry(job.id)
        assert wrong.value.state == "waiting"
        assert not rig.of(JobRetried)

    run_virtual(main)


def test_retry_all_failed_jobs(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(5):
            await rig.queue.add("encounter-sync", i, attempts=1)
        async with rig.worker({"encounter-sync": fails}):
            await rig.until_idle()
        assert (await rig.queue.stats()).failed == 5
        async with rig.worker({"encounter-sync": noop}):
            assert await rig.queue.retry_all_failed() == 5
            await rig.until_idle()
        assert await rig.queue.stats() == QueueStats(0, 0, 5, 0, 0, 0)
        assert await rig.queue.retry_all_failed() == 0

    run_virtual(main)


def test_a_job_id_de_duplicates_while_the_job_exists(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        first = await rig.queue.add("encounter-sync", {"v": 1}, job_id="encounter:enc_1")
        again = await rig.queue.add("encounter-sync", {"v": 2}, job_id="encounter:enc_1")
        assert again.id == first.id == "encounter:enc_1"
        assert again.data == {"v": 1}
        [dup] = rig.of(JobDuplicated)
        assert dup.job_id == "encounter:enc_1"
        async with rig.worker({"encounter-sync": noop}):
            await rig.until_idle()
            await rig.queue.add("encounter-sync", {"v": 3}, job_id="encounter:enc_1")  # completed: still there
            await rig.until_idle()
        assert (await rig.queue.stats()).completed == 1
        assert len(rig.of(JobDuplicated)) == 2
        assert await rig.queue.clean(JobState.COMPLETED) == 1
        fresh = await rig.queue.add("encounter-sync", {"v": 4}, job_id="encounter:enc_1")
        assert fresh.state == JobState.WAITING
        assert fresh.data == {"v": 4}

    run_virtual(main)


def test_bulk_adds_de_duplicate_within_the_batch(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        jobs = await rig.queue.add_bulk([JobSpec("encounter-sync", 1, job_id="a"), JobSpec("encounter-sync", 2),
                                         JobSpec("encounter-sync", 3, job_id="a")])
        assert [j.id for j in jobs] == ["a", "1", "a"]
        assert jobs[2].data == 1
        assert (await rig.queue.stats()).waiting == 2

    run_virtual(main)


def test_bad_adds_are_refused(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for kwargs in ({"job_id": "42"}, {"job_id": ""}, {"delay_s": -1.0}, {"attempts": 0}):
            with pytest.raises(ValueError, match=r"id|delay|attempts"):
                await rig.queue.add("encounter-sync", **kwargs)
        with pytest.raises(ValueError, match="name"):
            await rig.queue.add("")
        assert (await rig.queue.stats()).pending == 0

    run_virtual(main)


def test_retention_keeps_the_newest_count(make_store: StoreFactory) -> None:
    async def main() -> None:
        keep = KeepJobs(count=3)
        rig = Rig(make_store("sync"), options=QueueOptions(keep_completed=keep, keep_failed=KeepJobs(count=1)))
        ids = [(await rig.queue.add("encounter-sync", i)).id for i in range(5)]
        for i in range(2):
            await rig.queue.add("bad-sync", i, attempts=1)
        async with rig.worker({"encounter-sync": noop, "bad-sync": fails}, concurrency=1):
            await rig.until_idle()
        assert [j.id for j in await rig.queue.jobs(JobState.COMPLETED)] == ids[:1:-1]
        assert (await rig.queue.stats()).failed == 1
        removed = {(e.state, e.reason): 0 for e in rig.of(JobsRemoved)}
        for e in rig.of(JobsRemoved):
            removed[(e.state, e.reason)] += e.count
        assert removed == {("completed", "retention"): 2, ("failed", "retention"): 1}

    run_virtual(main)


def test_retention_removes_jobs_older_than_the_age(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))  # the runbook's 7 days for completed, 30 for failed
        await rig.queue.add("encounter-sync", "old")
        await rig.queue.add("bad-sync", "old", attempts=1)
        async with rig.worker({"encounter-sync": noop, "bad-sync": fails}):
            await rig.until_idle()
        await rig.clock.sleep(7 * DAY_S - 10)
        await rig.queue.add("encounter-sync", "new")
        async with rig.worker({"encounter-sync": noop}):
            await rig.until_idle()
        assert (await rig.queue.stats()).completed == 2  # the old one is 7 days old, not older
        await rig.clock.sleep(20.0)
        await rig.queue.add("encounter-sync", "newer")
        async with rig.worker({"encounter-sync": noop}):
            await rig.until_idle()
        assert sorted(str(j.data) for j in await rig.queue.jobs(JobState.COMPLETED)) == ["new", "newer"]
        assert (await rig.queue.stats()).failed == 1  # 30 days for failed jobs
        await rig.clock.sleep(22 * DAY_S)  # the failed job is 29 days old, the completed ones 22
        assert await rig.queue.clean_old() == 2  # lazy retention, applied on demand
        assert await rig.queue.stats() == QueueStats(0, 0, 0, 1, 0, 0)
        await rig.clock.sleep(DAY_S)
        assert await rig.queue.clean_old() == 1
        assert await rig.queue.stats() == QueueStats(0, 0, 0, 0, 0, 0)

    run_virtual(main)


def test_clean_removes_finished_jobs_past_a_grace_period(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(4):
            await rig.queue.add("bad-sync", i, attempts=1)
            async with rig.worker({"bad-sync": fails}):
                await rig.until_idle()
            await rig.clock.sleep(10.0)
        assert await rig.queue.clean(JobState.FAILED, grace_s=25.0) == 2
        assert await rig.queue.clean(JobState.FAILED, grace_s=0.0, limit=1) == 1
        [left] = await rig.queue.failed_jobs()
        assert left.data == 3
        [removed, *_] = rig.of(JobsRemoved)
        assert (removed.state, removed.count, removed.reason) == ("failed", 2, "clean")
        with pytest.raises(ValueError, match="waiting"):
            await rig.queue.clean(JobState.WAITING)

    run_virtual(main)
