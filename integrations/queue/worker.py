"""`Worker`: runs a queue's jobs with BullMQ's semantics, on the injected clock (runbook
002_437ee203264dfa64.txt §2.2: concurrency 5, 10 jobs/s, 3 attempts, exponential backoff from 1 s).

```python
async def sync_encounter(job: Job) -> JsonValue: ...

worker = Worker(queue, {"encounter-sync": sync_encounter}, rng=sources.stream("queue.worker"))
async with worker:           # claims, renews locks, takes back stalled jobs, until closed
    ...
```

- Up to `concurrency` jobs at once; claims go through the store, which applies the queue-wide rate
  limit, the global concurrency cap and pause atomically, so several workers in several processes
  share them.
- A handler's return value (JSON) is the job's result. An exception fails the attempt: with attempts
  left, the job is delayed by its backoff (`Backoff.delay_s_for`, jitter from the seeded `rng`);
  otherwise, or on `UnrecoverableJobError`, or for a job name with no handler, it fails.
- At-least-once: a job runs again if its worker dies, or loses its lock, before the store records the
  outcome. Each worker renews the locks of its running jobs and takes back stalled ones
  (`WorkerOptions`). A job handler must therefore be idempotent (the sync worker upserts).
- While the store is unavailable (Redis restarting), claiming pauses and outcomes are retried every
  `store_retry_s` until the job's lock would have expired; after that the job will be taken back.

Every state change is an event: `JobStarted`, `JobCompleted`, `JobRetryScheduled`, `JobFailed`,
`JobPromoted`, `JobStalled`, `JobLockLost`, `JobsRemoved` (retention), `QueueStoreUnavailable`.
Events carry the job's id and name and error class names, never job data or error messages. The
failed reason the store keeps (for the operator's failed-job listing) is the error's class and its
message, cut to 200 characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from integrations.clock import Clock
from integrations.events import (
    JobCompleted,
    JobFailed,
    JobLockLost,
    JobPromoted,
    JobRetryScheduled,
    JobsRemoved,
    JobStalled,
    JobStarted,
    QueueStoreUnavailable,
)
from integrations.queue.errors import StoreUnavailable, UnrecoverableJobError
from integrations.queue.job_queue import JobQueue
from integrations.queue.model import (
    ClaimRequest,
    Completion,
    Finished,
    Job,
    JobState,
    JsonValue,
    KeepJobs,
    WorkerOptions,
    dump_json,
    now_ms,
    to_ms,
)
from integrations.queue.store import JobStore

Handler = Callable[[Job], Awaitable[JsonValue]]

REASON_LIMIT = 200


class NoHandler(UnrecoverableJobError):
    """No handler is registered for the job's name."""


def failed_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:REASON_LIMIT]


class _Completions:
    """Jobs that finish in the same turn of the event loop are recorded in one store call (one transaction,
    one script), and those finishing while it is in flight in the next: no-op jobs drain several times
    faster on Redis, where each call is a round trip."""

    def __init__(self, store: JobStore, clock: Clock, keep: KeepJobs, on_removed: Callable[[int], None]) -> None:
        self._store = store
        self._clock = clock
        self._keep = keep
        self._on_removed = on_removed
        self._pending: list[tuple[Completion, asyncio.Future[Finished]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, completion: Completion) -> Finished:
        future: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def drained(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        await self._clock.sleep(0)  # one turn of the loop: let the jobs finishing now join
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                done = await self._store.complete([c for c, _ in batch], now_ms(self._clock), self._keep)
            except Exception as exc:  # StoreUnavailable: each job's _settle retries; anything else fails them
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._on_removed(done.removed)
            for ok, (_, future) in zip(done.ok, batch, strict=True):
                if not future.done():
                    future.set_result(Finished(ok=ok))


class Worker:
    """Runs jobs of one queue. `start()` (or `async with`) inside the running loop; `close()` stops it."""

    def __init__(self, queue: JobQueue, handlers: Mapping[str, Handler], *, rng: random.Random,
                 options: WorkerOptions | None = None) -> None:
        self._queue = queue
        self._store = queue.store
        self._clock = queue.clock
        self._handlers = dict(handlers)
        self._rng = rng
        self.options = options or WorkerOptions()
        # Lock tokens must differ between processes that share a seed: the pid makes them.
        self._token_base = f"{self.options.name}:{os.getpid()}:{rng.getrandbits(48):012x}"
        self._claims = 0
        # Keyed by (job id, claim token): a job this worker lost and claimed again runs twice, apart.
        self._locks: dict[tuple[str, str], int] = {}  # -> lock expiry ms
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._slot = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._completions = _Completions(self._store, self._clock, queue.options.keep_completed,
                                         lambda removed: self._retention(JobState.COMPLETED, removed))

    @property
    def active(self) -> int:
        return len(self._running)

    def _emit_unavailable(self, exc: StoreUnavailable) -> None:
        cause = exc.__cause__
        self._queue.listener(QueueStoreUnavailable(
            queue=self._queue.name, worker=self.options.name, operation=exc.operation,
            error=type(cause).__name__ if cause is not None else type(exc).__name__))

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("worker already started")
        self._tasks = [asyncio.create_task(self._claim_loop()), asyncio.create_task(self._renew_loop()),
                       asyncio.create_task(self._stalled_loop())]

    async def __aenter__(self) -> Worker:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self, timeout_s: float | None = None) -> None:
        """Stop claiming; let running jobs finish (cancelled after `timeout_s`: their locks then expire and
        another worker takes them back); stop renewing and checking."""
        self._closing = True
        self._queue.doorbell.ring()
        self._slot.set()
        if not self._tasks:
            return
        claim_loop, *background = self._tasks
        try:
            await claim_loop  # re-raises what stopped it, if anything did, after the rest is shut down
        finally:
            await self._shut_down(background, timeout_s)

    async def _shut_down(self, background: list[asyncio.Task[None]], timeout_s: float | None) -> None:
        running = list(self._running.values())
        if running:
            try:
                if timeout_s is None:
                    await asyncio.gather(*running, return_exceptions=True)
                else:
                    async with self._clock.timeout(timeout_s):
                        await asyncio.gather(*running, return_exceptions=True)
            except TimeoutError:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        await self._completions.drained()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)

    async def _wait(self, event: asyncio.Event, timeout_s: float | None) -> None:
        if timeout_s is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with self._clock.timeout(timeout_s):
                await event.wait()

    async def _claim_loop(self) -> None:
        opts = self.options
        limiter = opts.limiter
        await self._check_stalled()  # first, so jobs of a worker that died go before newer ones
        while not self._closing:
            free = opts.concurrency - len(self._running)
            if free <= 0:
                self._slot.clear()
                await self._wait(self._slot, None)
                continue
            ticket = self._queue.doorbell.ticket()
            now = now_ms(self._clock)
            self._claims += 1
            token = f"{self._token_base}:{self._claims}"
            request = ClaimRequest(now_ms=now, token=token, lock_until_ms=now + to_ms(opts.lock_duration_s),
                                   limit=free, rate_max=None if limiter is None else limiter.max,
                                   rate_window_ms=None if limiter is None else to_ms(limiter.duration_s),
                                   global_concurrency=opts.global_concurrency)
            try:
                claim = await self._store.claim(request)
            except StoreUnavailable as exc:
                self._emit_unavailable(exc)
                await self._wait(ticket, opts.store_retry_s)
                continue
            for promoted in claim.promoted:
                self._queue.listener(JobPromoted(queue=self._queue.name, job_id=promoted.id, name=promoted.name))
            for job in claim.jobs:
                self._locks[job.id, token] = request.lock_until_ms
                self._running[job.id, token] = asyncio.create_task(self._process(job, token))
            if claim.jobs:
                continue
            delay = opts.poll_interval_s
            if claim.wake_ms is not None:
                delay = min(delay, max(0.001, (claim.wake_ms - now) / 1000))
            await self._wait(ticket, delay)

    async def _process(self, job: Job, token: str) -> None:
        queue, worker = self._queue.name, self.options.name
        self._queue.listener(JobStarted(queue=queue, job_id=job.id, name=job.name, attempt=job.attempt,
                                        worker=worker))
        started = self._clock.monotonic()
        try:
            handler = self._handlers.get(job.name)
            try:
                if handler is None:
                    raise NoHandler(f"no handler for job name {job.name!r}")
                result = dump_json(await handler(job))
            except Exception as exc:  # any failure of the attempt; cancellation leaves the job to its lock
                await self._failed(job, token, exc)
            else:
                completion = Completion(job_id=job.id, token=token, result=result)
                if await self._settle(job, token, lambda: self._completions.record(completion)) is not None:
                    self._queue.listener(JobCompleted(queue=queue, job_id=job.id, name=job.name, attempt=job.attempt,
                                                      worker=worker, duration_s=self._clock.monotonic() - started))
        finally:
            self._locks.pop((job.id, token), None)
            self._running.pop((job.id, token), None)
            self._slot.set()
            if self.options.global_concurrency is not None:
                self._queue.doorbell.ring()

    async def _failed(self, job: Job, token: str, exc: Exception) -> None:
        queue, worker, error = self._queue.name, self.options.name, type(exc).__name__
        reason = failed_reason(exc)
        if isinstance(exc, UnrecoverableJobError) or job.attempts_made + 1 >= job.attempts:
            finished = await self._settle(job, token, lambda: self._store.fail(
                job.id, token, now_ms(self._clock), reason, self._queue.options.keep_failed))
            if finished is not None:
                self._queue.listener(JobFailed(queue=queue, job_id=job.id, name=job.name,
                                               attempts_made=job.attempts_made + 1, error=error, worker=worker))
                self._retention(JobState.FAILED, finished.removed)
            return
        delay_ms = to_ms(job.backoff.delay_s_for(job.attempts_made + 1, self._rng))
        now = now_ms(self._clock)
        finished = await self._settle(job, token, lambda: self._store.retry_later(
            job.id, token, now, now + delay_ms, reason))
        if finished is not None:
            self._queue.listener(JobRetryScheduled(queue=queue, job_id=job.id, name=job.name, attempt=job.attempt,
                                                   delay_s=delay_ms / 1000, error=error, worker=worker))
            self._queue.doorbell.ring()  # waiting again, or a new due time to wake up for

    async def _settle(self, job: Job, token: str, record: Callable[[], Awaitable[Finished]]) -> Finished | None:
        """Record an outcome, retrying while the store is unavailable and the lock is still ours; None when
        the lock is lost (the outcome is discarded: the job runs again elsewhere)."""
        while True:
            try:
                finished = await record()
            except StoreUnavailable as exc:
                self._emit_unavailable(exc)
                lock_until = self._locks.get((job.id, token))
                if lock_until is None or now_ms(self._clock) >= lock_until:
                    break
                await self._clock.sleep(self.options.store_retry_s)
                continue
            if finished.ok:
                return finished
            break
        self._queue.listener(JobLockLost(queue=self._queue.name, job_id=job.id, name=job.name,
                                         worker=self.options.name))
        return None

    def _retention(self, state: JobState, removed: int) -> None:
        if removed:
            self._queue.listener(JobsRemoved(queue=self._queue.name, state=state.value, count=removed,
                                             reason="retention"))

    async def _renew_loop(self) -> None:
        while True:
            await self._clock.sleep(self.options.renew_every_s)
            if not self._locks:
                continue
            locks = list(self._locks)
            until = now_ms(self._clock) + to_ms(self.options.lock_duration_s)
            try:
                lost = await self._store.extend_locks(locks, until)
            except StoreUnavailable as exc:
                self._emit_unavailable(exc)
                continue
            for key in locks:
                if key[0] in lost:
                    self._locks.pop(key, None)  # its outcome will be refused: JobLockLost then
                elif key in self._locks:
                    self._locks[key] = until

    async def _stalled_loop(self) -> None:
        while True:
            await self._clock.sleep(self.options.stalled_interval_s)
            await self._check_stalled()

    async def _check_stalled(self) -> None:
        try:
            stalled = await self._store.recover_stalled(now_ms(self._clock), self.options.max_stalled_count,
                                                        self._queue.options.keep_failed)
        except StoreUnavailable as exc:
            self._emit_unavailable(exc)
            return
        for job in stalled:
            self._queue.listener(JobStalled(queue=self._queue.name, job_id=job.id, name=job.name,
                                            stalled_count=job.stalled_count, failed=job.failed,
                                            worker=self.options.name))
        if any(not job.failed for job in stalled):
            self._queue.doorbell.ring()
