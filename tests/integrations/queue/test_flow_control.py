"""Rate limit, concurrency, pause/resume and delayed jobs on both stores, in virtual time (runbook
002_437ee203264dfa64.txt §2.2: concurrency 5, 10 jobs per 1000 ms; §7.3: pause, active jobs finish)."""

from __future__ import annotations

from harness.clock import run_virtual
from integrations.events import JobAdded, JobCompleted, JobPromoted, JobStarted, QueuePaused, QueueResumed
from integrations.queue import Job, JobState, JsonValue, RateLimit, WorkerOptions
from integrations.queue.model import ClaimRequest, now_ms
from tests.integrations.queue.conftest import StoreFactory
from tests.integrations.queue.support import Rig, noop


def test_worker_defaults_are_the_runbook_s() -> None:
    options = WorkerOptions()
    assert options.concurrency == 5
    assert options.limiter == RateLimit(max=10, duration_s=1.0)


def max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window - 1e-9) for t in times)


def test_rate_limit_10_per_second_in_any_window(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(35):
            await rig.queue.add("encounter-sync", i)
        async with rig.worker({"encounter-sync": noop}, concurrency=50, limiter=RateLimit(10, 1.0)):
            await rig.until_idle()
        starts = rig.times(JobStarted)
        assert len(starts) == 35
        assert max_in_any_window(starts, 1.0) == 10
        t0 = starts[0]
        assert [round(t - t0, 3) for t in starts[::10]] == [0.0, 1.0, 2.0, 3.0]  # no idle time beyond the limit

    run_virtual(main)


def test_rate_limit_is_shared_by_every_worker(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(30):
            await rig.queue.add("encounter-sync", i)
        limit = RateLimit(5, 1.0)
        async with rig.worker({"encounter-sync": noop}, name="a", limiter=limit), \
                rig.worker({"encounter-sync": noop}, name="b", seed=2, limiter=limit):
            await rig.until_idle()
        starts = rig.times(JobStarted)
        assert {e.worker for e in rig.of(JobStarted)} == {"a", "b"}
        assert max_in_any_window(starts, 1.0) == 5
        assert starts[-1] - starts[0] >= 5.0

    run_virtual(main)


def test_concurrency_caps_parallel_jobs(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        running = peak = 0

        async def slow(job: Job) -> JsonValue:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await rig.clock.sleep(1.0)
            running -= 1
            return None

        for i in range(12):
            await rig.queue.add("encounter-sync", i)
        started = rig.clock.monotonic()
        async with rig.worker({"encounter-sync": slow}):  # default concurrency: 5
            await rig.until_idle(step_s=0.01)
        assert peak == 5
        assert rig.clock.monotonic() - started < 3.1  # 5 + 5 + 2: three rounds of 1 s

    run_virtual(main)


def test_global_concurrency_caps_active_jobs_across_workers(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        running = peak = 0

        async def slow(job: Job) -> JsonValue:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await rig.clock.sleep(1.0)
            running -= 1
            return None

        for i in range(9):
            await rig.queue.add("encounter-sync", i)
        async with rig.worker({"encounter-sync": slow}, name="a", global_concurrency=3), \
                rig.worker({"encounter-sync": slow}, name="b", seed=2, global_concurrency=3):
            await rig.until_idle(step_s=0.01)
        assert peak == 3
        assert len(rig.of(JobCompleted)) == 9

    run_virtual(main)


def test_pause_lets_active_jobs_finish_and_starts_none_until_resume(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))

        async def slow(job: Job) -> JsonValue:
            await rig.clock.sleep(1.0)
            return None

        for i in range(6):
            await rig.queue.add("encounter-sync", i)
        async with rig.worker({"encounter-sync": slow}, concurrency=2):
            await rig.clock.sleep(0.5)
            await rig.queue.pause()
            assert await rig.queue.is_paused()
            stats = await rig.queue.stats()
            assert (stats.active, stats.paused, stats.waiting) == (2, 4, 0)
            await rig.clock.sleep(9.5)  # t = 10
            stats = await rig.queue.stats()
            assert (stats.active, stats.completed, stats.paused) == (0, 2, 4)
            await rig.queue.resume()
            await rig.until_idle(step_s=0.01)
        starts = rig.times(JobStarted)
        assert [round(t) for t in starts] == [0, 0, 10, 10, 11, 11]
        assert [type(e) for e in rig.events if isinstance(e, QueuePaused | QueueResumed)] == [QueuePaused, QueueResumed]

    run_virtual(main)


def test_pause_and_resume_twice_emit_once(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        await rig.queue.pause()
        await rig.queue.pause()
        await rig.queue.resume()
        await rig.queue.resume()
        assert len(rig.of(QueuePaused)) == 1
        assert len(rig.of(QueueResumed)) == 1
        assert not await rig.queue.is_paused()

    run_virtual(main)


def test_delayed_jobs_start_when_due_and_in_due_order(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        late = await rig.queue.add("encounter-sync", "late", delay_s=5.0)
        soon = await rig.queue.add("encounter-sync", "soon", delay_s=2.5)
        now = await rig.queue.add("encounter-sync", "now")
        assert late.state == JobState.DELAYED
        assert late.due_ms == late.created_ms + 5000
        stats = await rig.queue.stats()
        assert (stats.waiting, stats.delayed) == (1, 2)
        assert [e.delay_s for e in rig.of(JobAdded)] == [5.0, 2.5, 0.0]
        async with rig.worker({"encounter-sync": noop}):
            await rig.until_idle(step_s=0.01)
        assert [(e.job_id, round(t, 3)) for t, e in rig.log if isinstance(e, JobStarted)] == \
            [(now.id, 0.0), (soon.id, 2.5), (late.id, 5.0)]
        assert [e.job_id for e in rig.of(JobPromoted)] == [soon.id, late.id]

    run_virtual(main)


def test_a_job_added_later_wakes_an_idle_worker_at_once(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        async with rig.worker({"encounter-sync": noop}, poll_interval_s=30.0):
            await rig.clock.sleep(7.25)
            await rig.queue.add("encounter-sync")
            await rig.until_idle(step_s=0.01)
        assert [round(t, 3) for t in rig.times(JobStarted)] == [7.25]

    run_virtual(main)


def test_a_job_added_by_another_process_is_seen_within_the_poll_interval(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        other = Rig(make_store("sync"), clock=rig.clock)  # another JobQueue on the same store: no doorbell
        async with rig.worker({"encounter-sync": noop}, poll_interval_s=2.0):
            await rig.clock.sleep(0.5)
            await other.queue.add("encounter-sync")
            await rig.until_idle(step_s=0.01)
        [started] = rig.times(JobStarted)
        assert 0.5 < started <= 2.0 + 1e-6

    run_virtual(main)


def test_a_rate_limited_claim_says_when_to_ask_again(make_store: StoreFactory) -> None:
    async def main() -> None:
        rig = Rig(make_store("sync"))
        for i in range(3):
            await rig.queue.add("encounter-sync", i)
        now = now_ms(rig.clock)

        def request(at: int, token: str) -> ClaimRequest:
            return ClaimRequest(now_ms=at, token=token, lock_until_ms=at + 30_000, limit=5, rate_max=2,
                                rate_window_ms=1000)

        first = await rig.store.claim(request(now, "a"))
        assert (len(first.jobs), first.rate_limited) == (2, False)
        second = await rig.store.claim(request(now + 400, "b"))
        assert (second.jobs, second.rate_limited, second.wake_ms) == ([], True, now + 1000)
        third = await rig.store.claim(request(now + 1000, "c"))
        assert [job.data for job in third.jobs] == [2]

    run_virtual(main)
