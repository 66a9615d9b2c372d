"""`ehrlab worker`: the service's sync worker alone, against a Medplum simulator, until SIGTERM or Ctrl-C.

    ehrlab worker --db PATH [--redis URL] --medplum-url URL --seed N [--concurrency 5] [--rate-limit 10]
                  [--stall-timeout 30] [--max-stalled 1] [--progress 1] [--until-drained] [--allow-remote]

The worker is the one `ehrlab service` runs, built by the same wiring (`harness.service_cmd.wire_service`:
same queue placement, same `SyncService` handlers, consent gate, de-identified mapping, audit trail), with no
HTTP service and no provider monitor. `--seed` must be the Medplum simulator's (`ehrlab serve medplum --seed
N`): the lab client's credentials derive from it, as for `ehrlab service --medplum-url`.

Several workers (in several processes) may drain one queue; each takes back the jobs of a worker that died
once their lock has expired. `--stall-timeout S` is that lock's duration, and also how often this worker looks
for stalled jobs (BullMQ's `lockDuration` and `stalledInterval`, both 30 s by default): a job held by a killed
worker runs again between S and 2 S after the kill. Shorten it for a drill, not in production, where a job
slower than S would be taken for stalled while it still runs (it is renewed every S/2 while it runs).
`--max-stalled K`: a job that stalls more than K times fails instead of running again (BullMQ's
`maxStalledCount`, 1). `--rate-limit N`: at most N jobs start per second across every worker (runbook 002
§2.2: 10; 0 turns the limit off).

Output: a progress line whenever the queue's counts changed (at most every `--progress` seconds), and
`drained: ...` when no job is waiting, active or delayed. `--until-drained` exits 0 there. SIGTERM or
Ctrl-C: stop claiming, let running jobs finish (5 s at most; an unfinished one runs again after its lock
expires), exit 0 as `serve` and `service` do (a stopped worker is a normal end), or 130 with `--until-drained`
(stopped before the drain it was asked for). Counts only: no job data, record or patient appears in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from harness.clock import RealClock
from harness.errors import EXIT_ABORTED, UsageError
from harness.guard import check_target
from harness.queue_cmd import add_target_arguments, check_db, check_redis_url, format_stats
from harness.rng import RandomSource
from harness.service_cmd import VENDOR, ServiceSecrets, wire_service
from harness.vendors import LabSecrets
from integrations.events import IntegrationEvent, JobCompleted, JobFailed, JobStalled
from integrations.queue import QueueError, QueueStats, RateLimit, WorkerOptions

MAX_CONCURRENCY = 1000
MAX_SECONDS = 86_400.0
CLOSE_TIMEOUT_S = 5.0  # what `ehrlab service` gives running jobs when it stops


def add_parser(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run the sync worker alone (no HTTP service) until SIGTERM or Ctrl-C")
    add_target_arguments(worker)
    worker.add_argument("--medplum-url", required=True, metavar="URL",
                        help="the Medplum simulator to write to (`ehrlab serve medplum --seed N` prints it)")
    worker.add_argument("--seed", type=int, required=True, help="the simulator's seed (its credentials derive from it)")
    worker.add_argument("--concurrency", type=int, default=5, metavar="N",
                        help="jobs at once in this worker (default 5)")
    worker.add_argument("--rate-limit", type=int, default=10, metavar="N",
                        help="jobs started per second across all workers (default 10, runbook 002 §2.2; 0: none)")
    worker.add_argument("--stall-timeout", type=float, default=30.0, metavar="S",
                        help="seconds before a dead worker's job runs again; also the stalled check's period "
                             "(default 30, BullMQ's)")
    worker.add_argument("--max-stalled", type=int, default=1, metavar="K",
                        help="a job stalled more than K times fails (default 1, BullMQ's)")
    worker.add_argument("--progress", type=float, default=1.0, metavar="S",
                        help="at most one progress line every S seconds (default 1)")
    worker.add_argument("--until-drained", action="store_true",
                        help="exit 0 once no job is waiting, active or delayed")


def _options(args: argparse.Namespace) -> WorkerOptions:
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if not 0 <= args.rate_limit <= 100_000:
        raise UsageError("--rate-limit must be between 0 (no limit) and 100000")
    for flag, value in (("--stall-timeout", args.stall_timeout), ("--progress", args.progress)):
        if not 0.05 <= value <= MAX_SECONDS:  # also refuses nan and inf
            raise UsageError(f"{flag} must be between 0.05 and {MAX_SECONDS:g} seconds")
    if not 0 <= args.max_stalled <= 1000:
        raise UsageError("--max-stalled must be between 0 and 1000")
    return WorkerOptions(name="ehrlab-worker", concurrency=args.concurrency,
                         limiter=RateLimit(max=args.rate_limit) if args.rate_limit else None,
                         lock_duration_s=args.stall_timeout, stalled_interval_s=args.stall_timeout,
                         max_stalled_count=args.max_stalled, poll_interval_s=min(1.0, args.stall_timeout))


def _medplum_url(url: str, *, allow_remote: bool) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"--medplum-url must be a URL like http://127.0.0.1:8000, not {url!r}")
    check_target("--medplum-url", url, allow_remote=allow_remote)
    return url.rstrip("/")


class _Tally:
    def __init__(self) -> None:
        self.completed = 0
        self.failed = 0
        self.stalled = 0  # jobs of a dead worker this one took back

    def __str__(self) -> str:
        return f"this worker: completed {self.completed}, failed {self.failed}, took back {self.stalled} stalled"

    def __call__(self, event: IntegrationEvent) -> None:
        if isinstance(event, JobCompleted):
            self.completed += 1
        elif isinstance(event, JobFailed):
            self.failed += 1
        elif isinstance(event, JobStalled):  # failed: it stalled more than --max-stalled times
            if event.failed:
                self.failed += 1
            else:
                self.stalled += 1


async def work(*, db: Path, redis_url: str | None, medplum_url: str, seed: int, options: WorkerOptions,
               progress_s: float, until_drained: bool) -> int:
    clock = RealClock()
    sources = RandomSource(seed)
    lab_secrets = LabSecrets.generate(VENDOR, sources.stream(f"secrets.{VENDOR}"))
    stop = asyncio.Event()
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        stopped_by.append(sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    tally = _Tally()
    async with httpx.AsyncHTTPTransport() as transport, wire_service(
            clock=clock, sources=sources, medplum_url=medplum_url, lab_secrets=lab_secrets, transport=transport,
            db_path=db, service_secrets=ServiceSecrets.generate(), listener=tally, start_worker=True,
            start_monitor=False, worker_options=options, redis_url=redis_url) as wired:
        queue = wired.components.queue
        print(f"ehrlab worker: queue {wired.config.queue_name} ({redis_url or db.name + '-queue'}), concurrency "
              f"{options.concurrency}, stall timeout {options.lock_duration_s:g} s; SIGTERM or Ctrl-C stops it",
              flush=True)
        last: QueueStats | None = None
        drained_told = False
        while not stop.is_set():
            try:
                stats = await queue.stats()
            except QueueError as exc:
                print(f"queue unavailable ({type(exc).__name__}); retrying", flush=True)
                stats = None
            if stats is not None and stats != last:
                print(f"{format_stats(stats)}  ({tally})", flush=True)
                last = stats
            if stats is not None and stats.pending == 0:
                if not drained_told:
                    print(f"drained: completed {stats.completed}, failed {stats.failed}  ({tally})", flush=True)
                    drained_told = True
                if until_drained:
                    return 0
            elif stats is not None:
                drained_told = False
            with suppress(TimeoutError):
                async with clock.timeout(progress_s):
                    await stop.wait()
        print(f"stopping ({stopped_by[0] if stopped_by else 'stop'}): letting running jobs finish", flush=True)
    print(f"stopped ({tally})", flush=True)
    return EXIT_ABORTED if until_drained else 0  # --until-drained: stopped before what was asked for


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    check_db(args.db, must_exist=True)
    check_redis_url(args.redis, allow_remote=args.allow_remote)
    medplum_url = _medplum_url(args.medplum_url, allow_remote=args.allow_remote)
    return asyncio.run(work(db=args.db, redis_url=args.redis, medplum_url=medplum_url, seed=args.seed,
                            options=options, progress_s=args.progress, until_drained=args.until_drained))
