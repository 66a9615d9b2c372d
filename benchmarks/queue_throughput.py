"""Job queue throughput: no-op jobs, and simulator-bound sync jobs, drained per second through each store;
the no-op figures against a baseline measured in the same run (the machines are shared and noisy).

    .venv/bin/python benchmarks/queue_throughput.py [--jobs 5000] [--sync-jobs 1000] [--repeat 3]
                                                    [--concurrency 5 50] [--medplum-quota 1000000000]

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

Sync jobs (no target; the figure is the end-to-end cost of one `observation-sync`): `--sync-jobs`
observations written through the `AppStore` (each write enqueues its job), then drained by a `Worker` running
the real `SyncService` handlers (consent check, de-identified mapping, an `If-Match`-capable PUT, the Patient
upserted once per token, `last_synced_at`, an audit row) against the Medplum simulator, in process (the
ASGI app over `VirtualTransport`: no sockets, so the figure is the code's, not the loopback's), on the real
clock, best of `--repeat`. Every job must complete (a failed one aborts the benchmark).

The simulator's FHIR quota is raised (`--medplum-quota`, points per client per minute) so the figure is
the code's: Medplum's stock quota, 50,000 points a minute at 100 points a write, caps one client at
500 writes a minute (8.3 jobs/s), below the queue's default rate limit of 10 jobs/s; pass
`--medplum-quota 50000` to see it (at concurrency 50, jobs then exhaust their attempts on 429s).
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
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets
from integrations.events import IntegrationEvent, JobCompleted, JobFailed
from integrations.queue import Job, JobQueue, JobSpec, JsonValue, SqliteStore, Worker, WorkerOptions
from integrations.queue.redis_store import RedisStore
from integrations.queue.store import JobStore
from integrations.sync import (
    EXPORT_DATA_CLASSES,
    AppDatabase,
    AppStore,
    AuditTrail,
    ConsentGate,
    ConsentStore,
    ObservationDetails,
    SyncService,
)
from simulators.medplum import MedplumSettings, create_medplum
from simulators.transport import VirtualTransport
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


async def drain_sync(store: JobStore, jobs: int, concurrency: int, quota: int) -> float:
    """Seconds for one worker to sync `jobs` observations (10 per patient) to the Medplum simulator."""
    clock = RealClock()
    sources = RandomSource(7)
    done = asyncio.Event()
    completed, failed = 0, 0

    def listen(event: IntegrationEvent) -> None:
        nonlocal completed, failed
        if isinstance(event, JobCompleted | JobFailed):
            completed += isinstance(event, JobCompleted)
            failed += isinstance(event, JobFailed)
            if completed + failed == jobs:
                done.set()

    medplum = VENDORS["medplum"]
    secrets = LabSecrets.generate("medplum", sources.stream("secrets.medplum"))
    settings = MedplumSettings(clients={secrets.client_id: secrets.client_secret}, admin_token=secrets.admin_token,
                               fhir_quota_per_minute=quota)
    simulator = create_medplum(settings, clock, sources.stream("simulator.medplum"))
    client = medplum.client(base_url="http://medplum.ehrlab.test", transport=VirtualTransport(simulator.app),
                            clock=clock, sources=sources, secrets=secrets, listener=listen)
    db = AppDatabase(":memory:", clock)
    queue = JobQueue(store, clock, listener=listen)
    consents = ConsentStore(db)
    gate = ConsentGate(consents, clock, listen)
    audit = AuditTrail(db, clock, listen)
    app_store = AppStore(db, clock, listen, queue, gate=gate)
    sync = SyncService(app_store, gate, audit, client.connector, clock, listen)
    for i in range(jobs):
        token = f"pt_bench{i // 10:06d}"
        if i % 10 == 0:
            app_store.add_patient_token(token, "org_bench", f"s3://bench/{token}.enc")
            consents.grant(token, "org_bench", EXPORT_DATA_CLASSES)
        await app_store.create_observation("org_bench", token, ObservationDetails(code="8310-5", value=37.0,
                                                                                  unit="Cel"))
    while (await queue.stats()).waiting < jobs:  # the writes enqueue without blocking: wait for the last
        await clock.sleep(0.01)
    started = time.perf_counter()
    async with Worker(queue, sync.handlers(), rng=random.Random(1),
                      options=WorkerOptions(concurrency=concurrency, limiter=None)):
        await done.wait()
        elapsed = time.perf_counter() - started
    await queue.close()
    await client.aclose()
    db.close()
    if failed:
        raise SystemExit(f"{failed} of {jobs} sync jobs failed: the figure would not be a throughput")
    return elapsed


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--sync-jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--medplum-quota", type=int, default=1_000_000_000,
                        help="the Medplum simulator's FHIR quota, points per client per minute (stock: 50000)")
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

        def sync_sqlite(c: int) -> float:
            return asyncio.run(drain_sync(SqliteStore(Path(tmp) / f"s{next(counter)}.db", "fhir-sync"),
                                          args.sync_jobs, c, args.medplum_quota))

        def sync_redis(c: int) -> float:
            assert server is not None
            return asyncio.run(drain_sync(RedisStore.connect(server.url, f"sync{next(counter)}"), args.sync_jobs, c,
                                          args.medplum_quota))

        stores: dict[str, Callable[[int], float]] = {"sqlite": sqlite}
        syncs: dict[str, Callable[[int], float]] = {"sqlite": sync_sqlite}
        if server is not None:
            stores |= {"redis (asyncio)": redis_async, "redis (blocking)": redis_blocking}
            syncs |= {"redis (asyncio)": sync_redis}
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
            print(f"sync jobs: {args.sync_jobs} observation-sync jobs to the Medplum simulator (in process, FHIR "
                  f"quota {args.medplum_quota:,} points/min), best of {args.repeat}")
            print(f"  {'store':<18} {'concurrency':>11} {'jobs/s':>9}")
            for c in args.concurrency:
                for name, run in syncs.items():
                    seconds = best(args.repeat, lambda run=run, c=c: run(c))  # type: ignore[misc]
                    print(f"  {name:<18} {c:>11} {args.sync_jobs / seconds:>9,.0f}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
