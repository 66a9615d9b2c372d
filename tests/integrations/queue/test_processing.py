"""Running jobs on both stores, in virtual time: results, attempts, exponential backoff with jitter
(runbook 002_437ee203264dfa64.txt §2.2: 3 attempts, 1 s -> 2 s -> 4 s), unrecoverable failures."""

from __future__ import annotations

import itertools

import pytest

from harness.clock import run_virtual
from integrations.events import (
    JobAdded,
    JobCompleted,
    JobFailed,
    JobPromoted,
    JobRetryScheduled,
    JobStarted,
)
from integrations.queue import (
    Backoff,
    Job,
    JobState,
    JsonValue,
    NoHandler,
    QueueStats,
    UnrecoverableJobError,
)
from tests.integrations.queue.conftest import StoreFactory
from tests.integrations.queue.support import Rig


class Boom(RuntimeError):
    pass


async def always_fails(job: Job) -> JsonValue:
    raise Boom("the provider said no")


def test_a_job_runs_once_and_keeps_its_result(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        seen: list[JsonValue] = []

        async def echo(job: Job) -> JsonValue:
            seen.append(job.data)
            return {"synced": job.data}

        job = await rig.queue.add("encounter-sync", {"encounter": "enc_1"})
        assert job.state == JobState.WAITING
        assert job.attempts == 3
        async with rig.worker({"encounter-sync": echo}):
            await rig.until_idle()
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.state == JobState.COMPLETED
        assert done.result == {"synced": {"encounter": "enc_1"}}
        assert done.attempts_made == 0
        assert done.finished_ms is not None
        assert seen == [{"encounter": "enc_1"}]
        assert [type(e) for e in rig.events] == [JobAdded, JobStarted, JobCompleted]
        assert await rig.queue.stats() == QueueStats(waiting=0, active=0, completed=1, failed=0, delayed=0, paused=0)

    run_virtual(main)


def test_jobs_run_in_the_order_they_were_added(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        order: list[str] = []

        async def record(job: Job) -> JsonValue:
            order.append(job.id)
            return None

        ids = [(await rig.queue.add("encounter-sync", i)).id for i in range(12)]
        async with rig.worker({"encounter-sync": record}, concurrency=1):
            await rig.until_idle()
        assert order == ids

    run_virtual(main)


def test_backoff_is_1_2_4_s_within_the_jitter(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", None, attempts=4)
        async with rig.worker({"encounter-sync": always_fails}, seed=7):
            await rig.until_idle()
        starts = rig.times(JobStarted, job_id=job.id)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(gaps) == 3
        for gap, base in zip(gaps, [1.0, 2.0, 4.0], strict=True):
            assert 0.75 * base <= gap <= 1.25 * base + 0.002
        delays = [e.delay_s for e in rig.of(JobRetryScheduled)]
        assert [e.attempt for e in rig.of(JobRetryScheduled)] == [1, 2, 3]
        assert delays != [1.0, 2.0, 4.0]  # jitter drawn
        for gap, delay in zip(gaps, delays, strict=True):
            assert gap == pytest.approx(delay, abs=0.002)  # the job starts when its backoff ends
        failed = await rig.queue.get_job(job.id)
        assert failed is not None
        assert failed.state == JobState.FAILED
        assert failed.attempts_made == 4
        assert failed.failed_reason == "Boom: the provider said no"
        [final] = rig.of(JobFailed)
        assert (final.attempts_made, final.error) == (4, "Boom")
        assert len(rig.of(JobPromoted)) == 3

    run_virtual(main)


def test_without_jitter_the_backoff_is_exactly_1_2_4_s(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("encounter-sync", None, attempts=4, backoff=Backoff(jitter=0))
        async with rig.worker({"encounter-sync": always_fails}):
            await rig.until_idle()
        starts = rig.times(JobStarted, job_id=job.id)
        assert [round(b - a, 3) for a, b in itertools.pairwise(starts)] == [1.0, 2.0, 4.0]

    run_virtual(main)


def test_default_is_three_attempts_then_failed(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        job = await rig.queue.add("observation-sync", {"observation": "obs_1"})
        async with rig.worker({"observation-sync": always_fails}):
            await rig.until_idle()
        assert [e.attempt for e in rig.of(JobStarted)] == [1, 2, 3]
        assert len(rig.of(JobRetryScheduled)) == 2
        assert (await rig.queue.stats()).failed == 1
        assert (await rig.queue.failed_jobs())[0].id == job.id

    run_virtual(main)


def test_a_job_that_fails_then_succeeds_completes(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        calls = 0

        async def flaky(job: Job) -> JsonValue:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise Boom("503")
            return "ok"

        job = await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": flaky}):
            await rig.until_idle()
        done = await rig.queue.get_job(job.id)
        assert done is not None
        assert done.state == JobState.COMPLETED
        assert done.result == "ok"
        assert done.attempts_made == 2
        [completed] = rig.of(JobCompleted)
        assert completed.attempt == 3

    run_virtual(main)


def test_unrecoverable_errors_and_unknown_names_fail_at_once(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))

        async def gives_up(job: Job) -> JsonValue:
            raise UnrecoverableJobError("consent revoked")

        await rig.queue.add("encounter-sync")
        await rig.queue.add("mystery-sync")
        async with rig.worker({"encounter-sync": gives_up}):
            await rig.until_idle()
        assert not rig.of(JobRetryScheduled)
        assert sorted(e.error for e in rig.of(JobFailed)) == [NoHandler.__name__, "UnrecoverableJobError"]
        assert all(e.attempts_made == 1 for e in rig.of(JobFailed))

    run_virtual(main)


def test_a_result_that_is_not_json_fails_the_attempt(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))

        async def bad(job: Job) -> JsonValue:
            return {"when": object()}  # type: ignore[dict-item]

        await rig.queue.add("encounter-sync", attempts=1)
        async with rig.worker({"encounter-sync": bad}):
            await rig.until_idle()
        [failed] = rig.of(JobFailed)
        assert failed.error == "TypeError"

    run_virtual(main)


def test_same_seed_same_events(make_store: StoreFactory) -> None:
    async def once(queue: str) -> list[tuple[float, object]]:
        rig = Rig(make_store(queue))

        async def sometimes(job: Job) -> JsonValue:
            if isinstance(job.data, int) and job.data % 3 == 0 and job.attempts_made == 0:
                raise Boom("transient")
            await rig.clock.sleep(0.1)
            return job.data

        for i in range(20):
            await rig.queue.add("encounter-sync", i)
        async with rig.worker({"encounter-sync": sometimes}, seed=3):
            await rig.until_idle()
        return [(round(t, 6), e) for t, e in rig.log]

    first = run_virtual(lambda: once("a"))
    second = run_virtual(lambda: once("b"))
    assert [(t, type(e), getattr(e, "job_id", None)) for t, e in first] == \
        [(t, type(e), getattr(e, "job_id", None)) for t, e in second]
    assert [getattr(e, "delay_s", None) for _, e in first] == [getattr(e, "delay_s", None) for _, e in second]
