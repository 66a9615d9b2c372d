"""A worker process for the crash tests: runs a queue's jobs on the real clock, appending each processed
job's id to its own log (the job's side effect), until killed or, with `--until-drained`, until nothing
is waiting, active or delayed; then prints its event counts as one JSON line.

    python tests/integrations/queue/crash_worker.py --store sqlite:/tmp/q.db --queue crash --log a.log
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from harness.clock import RealClock
from integrations.events import IntegrationEvent
from integrations.queue import Job, JobQueue, JsonValue, SqliteStore, StoreUnavailable, Worker, WorkerOptions
from integrations.queue.redis_store import RedisStore
from integrations.queue.store import JobStore


def open_store(spec: str, queue: str) -> JobStore:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        return SqliteStore(where, queue)
    if kind == "redis":
        return RedisStore.connect(where, queue)
    raise SystemExit(f"unknown store {spec!r}")


async def main(args: argparse.Namespace) -> None:
    clock = RealClock()
    counts: Counter[str] = Counter()

    def count(event: IntegrationEvent) -> None:
        counts[type(event).__name__] += 1

    queue = JobQueue(open_store(args.store, args.queue), clock, listener=count)
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def work(job: Job) -> JsonValue:
        await clock.sleep(args.job_s)
        os.write(log, f"{job.id}\n".encode())
        await clock.sleep(args.after_s)  # done, not yet recorded: a kill now makes a duplicate
        return None

    options = WorkerOptions(name=args.name, concurrency=args.concurrency, limiter=None, lock_duration_s=args.lock_s,
                            stalled_interval_s=args.stalled_s, poll_interval_s=0.05, store_retry_s=0.05)
    async with Worker(queue, {"crash-job": work}, rng=random.Random(args.name), options=options):
        while True:
            await clock.sleep(0.05)
            if not args.until_drained:
                continue
            try:
                if (await queue.stats()).pending == 0:
                    break
            except StoreUnavailable:
                continue
    await queue.close()
    os.close(log)
    print(json.dumps(dict(sorted(counts.items()))), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True, help="sqlite:PATH or redis:URL")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--job-s", type=float, default=0.01)
    parser.add_argument("--after-s", type=float, default=0.0)
    parser.add_argument("--lock-s", type=float, default=1.0)
    parser.add_argument("--stalled-s", type=float, default=0.2)
    parser.add_argument("--until-drained", action="store_true")
    asyncio.run(main(parser.parse_args()))
