"""The Redis store over the `redis.asyncio` client (real mode and production), on the real clock run 20x
faster than the wall; the virtual-time suite covers the same scripts through the blocking client."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis

from harness.clock import RealClock
from integrations.events import IntegrationEvent, JobCompleted, JobRetryScheduled
from integrations.queue import Job, JobQueue, JsonValue, StoreUnavailable, Worker, WorkerOptions
from integrations.queue.redis_store import RedisStore
from tests.integrations.queue.redis_server import free_port


@pytest.mark.real_network
def test_jobs_run_and_retry_over_the_asyncio_client(redis_url: str) -> None:
    async def main() -> list[IntegrationEvent]:
        clock = RealClock(scale=20.0)
        events: list[IntegrationEvent] = []
        queue = JobQueue(RedisStore.connect(redis_url, "live"), clock, listener=lambda event: events.append(event))
        failures = {"3"}

        async def sometimes(job: Job) -> JsonValue:
            if job.id in failures:
                failures.discard(job.id)
                raise RuntimeError("503")
            return job.data

        for i in range(20):
            await queue.add("encounter-sync", i)
        async with Worker(queue, {"encounter-sync": sometimes}, rng=random.Random(1),
                          options=WorkerOptions(limiter=None, poll_interval_s=0.5)), clock.timeout(60.0):
            while (await queue.stats()).pending:
                await clock.sleep(0.1)
        stats = await queue.stats()
        await queue.close()
        assert (stats.completed, stats.failed) == (20, 0)
        return events

    events = asyncio.run(main())
    assert len([e for e in events if isinstance(e, JobCompleted)]) == 20
    [retry] = [e for e in events if isinstance(e, JobRetryScheduled)]
    assert retry.job_id == "3"


@pytest.mark.real_network
def test_an_unreachable_server_is_store_unavailable() -> None:
    async def main() -> None:
        store = RedisStore.connect(f"redis://127.0.0.1:{free_port()}/0", "q", timeout_s=1.0)
        with pytest.raises(StoreUnavailable) as caught:
            await store.stats()
        assert caught.value.operation == "stats"
        assert isinstance(caught.value.__cause__, redis.ConnectionError)
        await store.close()

    asyncio.run(main())
