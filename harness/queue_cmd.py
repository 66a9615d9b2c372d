"""`ehrlab enqueue` and `ehrlab queue stats`: the service's sync queue from the command line.

    ehrlab enqueue --db PATH [--redis URL] --count N [--seed N]
    ehrlab queue stats --db PATH [--redis URL]

The application database (`--db`, as `ehrlab service --db`) holds the records; the job queue lives beside it
(PATH + "-queue", SQLite) or on Redis (`--redis URL`), exactly where `ehrlab service` and `ehrlab worker` put
it: all three open it through `harness.service_cmd.wire_service`, the service's one wiring path.

`enqueue` writes N new temperature observations for the seed's demo patients through the service's own write
path (`AppStore.create_observation`: store, enqueue-time consent check, `observation-sync` job), so
`ehrlab worker` (or `ehrlab service --db PATH`) syncs them to Medplum. The demo patients are those of the
database's demo organisation; a database without any gets the ones `ehrlab service --seed N` creates
(`seed_demo`), whose own first encounter and observation are enqueued too (the count printed says so).
Nothing here talks to Medplum: the vendor client wired for the store is given a transport that refuses every request.

`queue stats` prints the queue's counts per state and the records' sync state (never synced, stale), one
line each: what an operator reads to see that a drain is complete.

Loopback only: `--redis` naming another host is refused (exit 2, before any connection) unless
`--allow-remote`, by the lab's one loopback guard (`harness.guard.check_target`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.clock import RealClock
from harness.errors import UsageError
from harness.guard import check_target
from harness.rng import RandomSource
from harness.service_cmd import DEMO_ORG, VENDOR, ServiceSecrets, Wired, demo_patients, seed_demo, wire_service
from harness.vendors import LabSecrets
from integrations.events import EventListener, IntegrationEvent, SyncEnqueueFailed, ignore_event
from integrations.queue import QueueError, QueueStats, WorkerOptions
from integrations.sync import ObservationDetails
from integrations.sync.models import RecordKind

MAX_COUNT = 1_000_000
#: The vendor URL handed to the wiring when nothing may talk to Medplum (the transport refuses every request).
NO_MEDPLUM = "http://127.0.0.1:9"


def check_redis_url(url: str | None, *, allow_remote: bool) -> None:
    if url is None:
        return
    if not url.startswith(("redis://", "rediss://")):
        raise UsageError(f"--redis must be a URL like redis://127.0.0.1:6379/0, not {url!r}")
    check_target("--redis", url, allow_remote=allow_remote)


def check_db(db: Path, *, must_exist: bool) -> None:
    if db.is_dir() or not db.parent.is_dir():
        raise UsageError(f"--db {db}: must be a file path in an existing directory")
    if must_exist and not db.is_file():
        raise UsageError(f"--db {db}: no such database (create it with `ehrlab enqueue` or `ehrlab service --db`)")


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """`--db`, `--redis`, `--allow-remote`: where the records and the queue are (shared by enqueue, queue, worker)."""
    parser.add_argument("--db", type=Path, required=True, metavar="PATH",
                        help="the application database (as `ehrlab service --db`); the queue is PATH-queue "
                             "unless --redis")
    parser.add_argument("--redis", default=None, metavar="URL",
                        help="the job queue on Redis at URL (redis://127.0.0.1:6379/0) instead of SQLite")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --redis or --medplum-url host outside loopback")


def add_parsers(commands: Any) -> None:
    """`ehrlab enqueue` and `ehrlab queue stats` (`commands`: the CLI's subparsers)."""
    enqueue = commands.add_parser("enqueue", help="add sync jobs: N new observations of the demo patients")
    add_target_arguments(enqueue)
    enqueue.add_argument("--count", type=int, required=True, metavar="N", help="how many sync jobs to add")
    enqueue.add_argument("--seed", type=int, default=1,
                         help="whose demo patients (the seed given to `ehrlab service`; default 1)")
    queue = commands.add_parser("queue", help="the sync queue's state (`ehrlab queue stats`)")
    actions = queue.add_subparsers(dest="queue_command", required=True, parser_class=type(queue))
    stats = actions.add_parser("stats", help="jobs per state and records never synced")
    add_target_arguments(stats)


@asynccontextmanager
async def open_store(db: Path, redis_url: str | None, seed: int,
                     listener: EventListener = ignore_event) -> AsyncIterator[Wired]:
    """The service's wiring with no worker, no monitor and no route to Medplum: its store and queue."""
    sources = RandomSource(seed)
    lab_secrets = LabSecrets.generate(VENDOR, sources.stream(f"secrets.{VENDOR}"))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("ehrlab enqueue / queue never talk to Medplum", request=request)

    async with httpx.MockTransport(refuse) as transport, wire_service(
            clock=RealClock(), sources=sources, medplum_url=NO_MEDPLUM, lab_secrets=lab_secrets,
            transport=transport, db_path=db, service_secrets=ServiceSecrets.generate(), listener=listener,
            start_worker=False, start_monitor=False, worker_options=WorkerOptions(), redis_url=redis_url) as wired:
        yield wired


async def reach_queue(wired: Wired, where: str) -> QueueStats:
    try:
        return await wired.components.queue.stats()
    except QueueError as exc:
        raise UsageError(f"cannot reach the job queue at {where}: {type(exc).__name__}") from None


def queue_place(db: Path, redis_url: str | None) -> str:
    return redis_url if redis_url is not None else str(db.with_name(db.name + "-queue"))


def format_stats(stats: QueueStats) -> str:
    return (f"completed {stats.completed}  failed {stats.failed}  waiting {stats.waiting}  active {stats.active}  "
            f"delayed {stats.delayed}  paused {stats.paused}")


@dataclass(frozen=True, slots=True)
class Enqueued:
    patients: list[str]
    added: int
    failed: int


async def enqueue(db: Path, redis_url: str | None, count: int, seed: int) -> Enqueued:
    failures: list[IntegrationEvent] = []

    def listen(event: IntegrationEvent) -> None:
        if isinstance(event, SyncEnqueueFailed):
            failures.append(event)

    async with open_store(db, redis_url, seed, listen) as wired:
        before = await reach_queue(wired, queue_place(db, redis_url))
        sources = RandomSource(seed)
        # The demo patients already in the database (whichever seed `ehrlab service` used), else the seed's
        patients = demo_patients(wired) or await seed_demo(wired, sources.stream("service.demo"))
        rng = sources.stream("enqueue.observations")
        for i in range(count):
            await wired.store.create_observation(DEMO_ORG, patients[i % len(patients)], ObservationDetails(
                code="8310-5", value=round(rng.uniform(36.1, 38.0), 1), unit="Cel"))
        after = await wired.components.queue.stats()
    total_before = before.pending + before.completed + before.failed
    total_after = after.pending + after.completed + after.failed
    return Enqueued(patients=patients, added=total_after - total_before, failed=len(failures))


async def stats_lines(db: Path, redis_url: str | None) -> list[str]:
    async with open_store(db, redis_url, 1) as wired:
        stats = await reach_queue(wired, queue_place(db, redis_url))
        lines = [f"queue {wired.config.queue_name} ({queue_place(db, redis_url)}): {format_stats(stats)}"]
        for kind in RecordKind:
            counts = wired.store.counts(kind)
            lines.append(f"{kind.resource_type} records: {counts.total}  synced {counts.synced}  "
                         f"never synced {counts.not_synced}  stale {counts.stale}")
    return lines


def run_enqueue(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_COUNT}")
    check_db(args.db, must_exist=False)
    check_redis_url(args.redis, allow_remote=args.allow_remote)
    fresh = not args.db.exists()
    try:
        done = asyncio.run(enqueue(args.db, args.redis, args.count, args.seed))
    except UsageError:  # the queue could not be reached: leave no new, empty database behind
        if fresh:
            for leftover in (args.db, *(args.db.with_name(args.db.name + end) for end in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
        raise
    extra = done.added - args.count
    first = f" and {extra} first records of newly registered demo patients" if extra > 0 else ""
    print(f"added {done.added} sync jobs: {args.count} observations of demo patients {', '.join(done.patients)} "
          f"({DEMO_ORG}){first}", flush=True)
    if done.failed:
        print(f"{done.failed} records were written but their sync job could not be enqueued (reconciliation finds "
              "them)")
        return 1
    return 0


def run_stats(args: argparse.Namespace) -> int:
    check_db(args.db, must_exist=True)
    check_redis_url(args.redis, allow_remote=args.allow_remote)
    for line in asyncio.run(stats_lines(args.db, args.redis)):
        print(line)
    return 0
