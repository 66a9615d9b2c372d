"""The queue's model, checker and error handling, without a backend in particular."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.queue as queue_pkg
from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from integrations.events import JobCompleted, JobLockLost, QueueStoreUnavailable
from integrations.queue import (
    Backoff,
    Job,
    JsonValue,
    KeepJobs,
    QueueError,
    RateLimit,
    SqliteStore,
    StoreUnavailable,
    WorkerOptions,
    check_total_queue,
)
from integrations.queue.model import Claim, ClaimRequest, Completed, Completion, now_ms
from tests.integrations.queue.support import Rig


def test_exponential_backoff_doubles_from_its_delay() -> None:
    backoff = Backoff()
    assert [backoff.base_delay_s(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert Backoff(kind="fixed", delay_s=3.0).base_delay_s(5) == 3.0
    assert Backoff(jitter=0).delay_s_for(3, random.Random(1)) == 4.0


@settings(max_examples=100)
@given(seed=st.integers(0, 2**32), attempts_made=st.integers(1, 8))
def test_jittered_delays_stay_within_25_percent(seed: int, attempts_made: int) -> None:
    backoff = Backoff()
    base = backoff.base_delay_s(attempts_made)
    assert 0.75 * base <= backoff.delay_s_for(attempts_made, random.Random(seed)) <= 1.25 * base


@pytest.mark.parametrize("make", [
    lambda: Backoff(delay_s=-1), lambda: Backoff(jitter=2), lambda: Backoff(kind="linear"),  # type: ignore[arg-type]
    lambda: KeepJobs(age_s=-1), lambda: KeepJobs(count=-1), lambda: RateLimit(0, 1.0), lambda: RateLimit(1, 0),
    lambda: WorkerOptions(concurrency=0), lambda: WorkerOptions(lock_renew_s=40.0),
    lambda: WorkerOptions(max_stalled_count=-1), lambda: WorkerOptions(global_concurrency=0),
    lambda: WorkerOptions(poll_interval_s=0),
])
def test_bad_options_are_refused(make: object) -> None:
    with pytest.raises(ValueError, match=r"must|unknown|needs"):
        make()  # type: ignore[operator]


def test_locks_are_renewed_at_half_their_duration_by_default() -> None:
    assert WorkerOptions(lock_duration_s=30.0).renew_every_s == 15.0
    assert WorkerOptions(lock_duration_s=30.0, lock_renew_s=5.0).renew_every_s == 5.0


def test_times_are_epoch_milliseconds_of_the_clock() -> None:
    async def main() -> int:
        clock = VirtualClock()
        await clock.sleep(1.25)
        return now_ms(clock)

    assert run_virtual(main) == round(VIRTUAL_EPOCH.timestamp() * 1000) + 1250


def test_the_public_api_is_what_it_says() -> None:
    public = [name for name, value in vars(queue_pkg).items()
              if not name.startswith("_") and not isinstance(value, ModuleType)]
    assert sorted(queue_pkg.__all__) == sorted(public)


def test_the_checker_passes_a_clean_history() -> None:
    result = check_total_queue(["1", "2", "3"], ["2", "1", "3"])
    assert result.valid
    assert not result.duplicated
    assert (result.attempted, result.acknowledged, result.processed) == (3, 3, 3)


def test_the_checker_finds_lost_unexpected_and_duplicated_jobs() -> None:
    result = check_total_queue(["1", "2", "3", "4"], ["1", "1", "3", "9", "5"], indeterminate=["5", "6"],
                               failed=["9"])
    assert result.lost == ("2", "4")
    assert result.unexpected == ("9",)
    assert result.duplicated == {"1": 2}
    assert result.recovered == ("5",)
    assert not result.valid
    assert "lost=2 unexpected=1 duplicated=1" in result.summary()


class FlakyStore(SqliteStore):
    """A SQLite store that can be switched off: every call raises `StoreUnavailable` while `down`."""

    down = False

    def _check(self, operation: str) -> None:
        if self.down:
            raise StoreUnavailable("down", queue=self.queue, operation=operation) from ConnectionError("refused")

    async def claim(self, request: ClaimRequest) -> Claim:
        self._check("claim")
        return await super().claim(request)

    async def complete(self, completions: Sequence[Completion], now_ms: int, keep: KeepJobs) -> Completed:
        self._check("complete")
        return await super().complete(completions, now_ms, keep)

    async def extend_locks(self, locks: Sequence[tuple[str, str]], until_ms: int) -> list[str]:
        self._check("extend_locks")
        return await super().extend_locks(locks, until_ms)


def test_the_worker_rides_out_a_short_store_outage(tmp_path: Path) -> None:
    async def main() -> None:
        store = FlakyStore(tmp_path / "q.db", "sync")
        rig = Rig(store)

        async def two_seconds(job: Job) -> JsonValue:
            await rig.clock.sleep(2.0)
            return "ok"

        await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": two_seconds}, store_retry_s=0.5):
            await rig.clock.sleep(1.0)
            store.down = True
            await rig.clock.sleep(3.0)
            store.down = False
            await rig.queue.add("encounter-sync")
            await rig.until_idle()
        outages = rig.of(QueueStoreUnavailable)
        assert {e.operation for e in outages} == {"claim", "complete"}
        assert {e.error for e in outages} == {"ConnectionError"}
        assert len(rig.of(JobCompleted)) == 2
        assert not rig.of(JobLockLost)
        await store.close()

    run_virtual(main)


def test_an_outcome_that_cannot_be_recorded_before_the_lock_expires_is_given_up(tmp_path: Path) -> None:
    async def main() -> None:
        store = FlakyStore(tmp_path / "q.db", "sync")
        rig = Rig(store)
        async def one_second(job: Job) -> JsonValue:
            await rig.clock.sleep(1.0)
            return None

        await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": one_second}, lock_duration_s=5.0, store_retry_s=1.0,
                              stalled_interval_s=2.0):
            await rig.clock.sleep(0.5)
            store.down = True
            await rig.clock.sleep(8.0)
            store.down = False
            await rig.until_idle()
        [lost] = rig.of(JobLockLost)
        assert lost.worker == "worker"
        assert len(rig.of(JobCompleted)) == 1  # the second run, after the job was taken back
        await store.close()

    run_virtual(main)


def test_queue_errors_share_one_root() -> None:
    for cls in (queue_pkg.StoreUnavailable, queue_pkg.JobNotFound, queue_pkg.InvalidJobState):
        assert issubclass(cls, QueueError)
    assert not issubclass(queue_pkg.UnrecoverableJobError, QueueError)


def test_an_in_memory_sqlite_store_works_for_throwaway_labs() -> None:
    async def main() -> None:
        rig = Rig(SqliteStore(":memory:", "sync"))
        await rig.queue.add("encounter-sync")
        async with rig.worker({"encounter-sync": noop_job}):
            await rig.until_idle()
        assert (await rig.queue.stats()).completed == 1
        await rig.queue.close()

    run_virtual(main)


async def noop_job(job: Job) -> JsonValue:
    return None
