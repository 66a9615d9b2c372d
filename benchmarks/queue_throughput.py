"""Job queue throughput: no-op jobs drained per second through each store, against a baseline measured in
the same run (the machines are shared and noisy).

    .venv/bin/python benchmarks/queue_throughput.py [--jobs 5000] [--repeat 3] [--concurrency 5 50]

Baseline: the same number of no-op items drained from an in-memory `asyncio.Queue` by `concurrency`
consumer tasks (the floor of any asyncio queue). Measured against it, best of `--repeat`, per
concurrency: a `Worker` draining jobs already added (with `add_bulk`), no rate limit, until the last
`JobCompleted`:
- SQLite: a WAL file in a temporary directory, `synchronous=NORMAL` (the default);
- Redis, `redis.asyncio` client (real mode): a redis-server started for the run on a free loopback port,
  AOF on, `appendfsync everysec`; skipped if `redis-server` is not on PATH;
- Redis, blocking client (what virtual mode uses).

Printed per store: jobs/s, and the ratio to the baseline's jobs/s in the same run (a store's cost is its
round trips and transactions: expect 0.3-1 % of a bare in-memory queue). Targets (issue 6): >= 2,000
jobs/s on SQLite, >= 5,000 jobs/s on Redis. Redis replies are parsed by hiredis (`redis[hiredis]`); the
pure-Python parser is ~3x slower on the claim's replies.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.clock import RealClock
from integrations.events import IntegrationEvent, JobCompleted
from integrations.queue import Job, JobQueue, JobSpec, JsonValue, SqliteStore, Worker, WorkerOptions
from integrations.queue.redis_store import RedisStore
from integrations.queue.store import JobStore
from tests.integrations.queue.redis_server import RedisServer, redis_binary

TARGETS = {"sqlite": 2000.0, "redis (asyncio)": 5000.0, "redis (blocking)": 5000.0}


async def _noop(job: Job) -> JsonValue:
    return None


async def baseline(jobs: int, concurrency: int) -> float:
    """Seconds to drain `jobs` no-op items from an asyncio.Queue with `concurrency` consumers."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    done = asyncio.Event()
    left = jobs

    async def consume() -> None:
        nonlocal left
        while True:
            await queue.get()
            await _noop(None)  # type: ignore[arg-type]
            left -= 1
            if left == 0:
                done.set()

    started = time.perf_counter()
    consumers = [asyncio.create_task(consume()) for _ in range(concurrency)]
    await done.wait()
    elapsed = time.perf_counter() - started
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return elapsed


async def drain(store: JobStore, jobs: int, concurrency: int) -> float:
    """Seconds for one worker to drain `jobs` no-op jobs added beforehand."""
    clock = RealClock()
    done = asyncio.Event()
    completed = 0

    def listen(event: IntegrationEvent) -> None:
        nonlocal completed
        if isinstance(event, JobCompleted):
            completed += 1
            if completed == jobs:
                done.set()

    queue = JobQueue(store, clock, listener=listen)
    for start in range(0, jobs, 1000):
        await queue.add_bulk([JobSpec("noop", i) for i in range(start, min(jobs, start + 1000))])
    started = time.perf_counter()
    async with Worker(queue, {"noop": _noop}, rng=random.Random(1),
                      options=WorkerOptions(concurrency=concurrency, limiter=None)):
        await done.wait()
        elapsed = time.perf_counter() - started
    await queue.close()
    return elapsed


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[5, 50])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server: RedisServer | None = None
        if redis_binary() is not None:
            server = RedisServer(Path(tmp) / "redis")
            server.start()
        else:
            print("redis-server not on PATH: Redis stores skipped (apt-get install -y redis-server)")
        counter = iter(range(1_000_000))

        def sqlite(c: int) -> float:
            return asyncio.run(drain(SqliteStore(Path(tmp) / f"q{next(counter)}.db", "bench"), args.jobs, c))

        def redis_async(c: int) -> float:
            assert server is not None
            return asyncio.run(drain(RedisStore.connect(server.url, f"bench{next(counter)}"), args.jobs, c))

        def redis_blocking(c: int) -> float:
            assert server is not None
            return asyncio.run(drain(RedisStore.connect(server.url, f"bench{next(counter)}", blocking=True),
                                     args.jobs, c))

        stores: dict[str, Callable[[int], float]] = {"sqlite": sqlite}
        if server is not None:
            stores |= {"redis (asyncio)": redis_async, "redis (blocking)": redis_blocking}
        try:
            print(f"queue throughput: {args.jobs} no-op jobs, best of {args.repeat}")
            print(f"  {'store':<18} {'concurrency':>11} {'jobs/s':>9} {'of asyncio.Queue':>17} {'target':>8}")
            for c in args.concurrency:
                base = best(args.repeat, lambda c=c: asyncio.run(baseline(args.jobs, c)))  # type: ignore[misc]
                print(f"  {'asyncio.Queue':<18} {c:>11} {args.jobs / base:>9,.0f} {'1.000':>17} {'':>8}")
                for name, run in stores.items():
                    seconds = best(args.repeat, lambda run=run, c=c: run(c))  # type: ignore[misc]
                    rate = args.jobs / seconds
                    verdict = "ok" if rate >= TARGETS[name] else "MISSED"
                    print(f"  {name:<18} {c:>11} {rate:>9,.0f} {base / seconds:>17.4f} "
                          f"{TARGETS[name]:>6,.0f} {verdict}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
