"""`JobQueue`: the producer's and the operator's side of a queue (runbook 002_437ee203264dfa64.txt §2.2
`fhir-queue.ts`: enqueue, stats, failed jobs, retry, clean, pause, resume; §6.3's admin endpoints).

```python
queue = JobQueue(SqliteStore("queue.db", "fhir-sync"), clock, listener=listener)
await queue.add("encounter-sync", {"encounter": "enc_7f3a"}, job_id="encounter-sync:enc_7f3a")
await queue.stats()          # QueueStats(waiting=1, active=0, completed=0, failed=0, delayed=0, paused=0)
await queue.failed_jobs(50)  # newest first
await queue.retry("17"); await queue.retry_all_failed()
await queue.pause(); await queue.resume()      # active jobs finish; none start in between
await queue.clean_old()      # retention now: completed older than 7 days, failed older than 30
```

A job id given at add time de-duplicates: while a job with that id exists (in any state, until
retention or a clean removes it) another add with it adds nothing and returns the existing job
(`JobDuplicated`). Ids the queue numbers itself are decimal strings, so a given id must not be one.

Every state change it makes is an event (`integrations.events`: `JobAdded`, `JobDuplicated`,
`JobRetried`, `JobsRemoved`, `QueuePaused`, `QueueResumed`); workers emit the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from integrations.clock import Clock
from integrations.events import (
    EventListener,
    JobAdded,
    JobDuplicated,
    JobRetried,
    JobsRemoved,
    QueuePaused,
    QueueResumed,
    ignore_event,
)
from integrations.queue.model import (
    Backoff,
    Job,
    JobState,
    JsonValue,
    KeepJobs,
    NewJob,
    QueueOptions,
    QueueStats,
    dump_json,
    now_ms,
    to_ms,
)
from integrations.queue.store import JobStore


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job for `add_bulk`; None fields take the queue's defaults."""

    name: str
    data: JsonValue = None
    job_id: str | None = None
    delay_s: float = 0.0
    attempts: int | None = None
    backoff: Backoff | None = None


class Doorbell:
    """Wakes the workers of this process when there is new work: waiters take a ticket, then check the
    store, then wait on the ticket, so a ring between the check and the wait is not missed."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def ticket(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def ring(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None


class JobQueue:
    """A named queue over a store, on the injected clock."""

    def __init__(self, store: JobStore, clock: Clock, *, options: QueueOptions | None = None,
                 listener: EventListener = ignore_event) -> None:
        self.store = store
        self.clock = clock
        self.options = options or QueueOptions()
        self.listener = listener
        self.doorbell = Doorbell()

    @property
    def name(self) -> str:
        return self.store.queue

    def _new(self, spec: JobSpec, now: int) -> NewJob:
        if not spec.name:
            raise ValueError("a job needs a name")
        if spec.job_id is not None and (not spec.job_id or spec.job_id.isdigit()):
            raise ValueError(f"job id {spec.job_id!r}: must be non-empty and not a number (numbers are the "
                             "queue's own ids)")
        if spec.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        attempts = self.options.attempts if spec.attempts is None else spec.attempts
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        delay = to_ms(spec.delay_s)
        return NewJob(name=spec.name, data=dump_json(spec.data), id=spec.job_id, attempts=attempts,
                      backoff=spec.backoff or self.options.backoff, created_ms=now,
                      due_ms=now + delay if delay > 0 else None)

    async def add(self, name: str, data: JsonValue = None, *, job_id: str | None = None, delay_s: float = 0.0,
                  attempts: int | None = None, backoff: Backoff | None = None) -> Job:
        """Add one job (`data` must be JSON); returns it, or the job already holding `job_id`."""
        [job] = await self.add_bulk([JobSpec(name, data, job_id, delay_s, attempts, backoff)])
        return job

    async def add_bulk(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Add jobs in one atomic step, in order."""
        now = now_ms(self.clock)
        added = await self.store.add([self._new(spec, now) for spec in specs])
        for job, created in added:
            if created:
                delay = 0.0 if job.due_ms is None else (job.due_ms - now) / 1000
                self.listener(JobAdded(queue=self.name, job_id=job.id, name=job.name, delay_s=delay,
                                       attempts=job.attempts))
            else:
                self.listener(JobDuplicated(queue=self.name, job_id=job.id, name=job.name))
        if any(created for _, created in added):
            self.doorbell.ring()
        return [job for job, _ in added]

    async def get_job(self, job_id: str) -> Job | None:
        return await self.store.get(job_id)

    async def stats(self) -> QueueStats:
        return await self.store.stats()

    async def jobs(self, state: JobState, limit: int = 50, offset: int = 0) -> list[Job]:
        return await self.store.jobs(state, limit, offset)

    async def failed_jobs(self, limit: int = 50, offset: int = 0) -> list[Job]:
        """Failed jobs, newest first (runbook 002 §6.3 `GET /fhir/admin/queue/failed?limit=50`)."""
        return await self.store.jobs(JobState.FAILED, limit, offset)

    async def retry(self, job_id: str) -> Job:
        """Retry one failed job with its attempts reset (`JobNotFound`, `InvalidJobState` otherwise)."""
        [job] = await self._retry(job_id)
        return job

    async def retry_all_failed(self) -> int:
        """Retry every failed job (runbook 002 §7.2 Scenario 1); returns how many."""
        return len(await self._retry(None))

    async def _retry(self, job_id: str | None) -> list[Job]:
        jobs = await self.store.retry_failed(job_id, now_ms(self.clock))
        for job in jobs:
            self.listener(JobRetried(queue=self.name, job_id=job.id, name=job.name))
        if jobs:
            self.doorbell.ring()
        return jobs

    async def clean(self, state: JobState, grace_s: float = 0.0, limit: int | None = None) -> int:
        """Remove completed or failed jobs that finished more than `grace_s` ago (at most `limit`, oldest
        first); returns how many."""
        removed = await self.store.trim(state, now_ms(self.clock), KeepJobs(age_s=grace_s), limit)
        self._removed(state, removed, "clean")
        return removed

    async def clean_old(self) -> int:
        """Apply retention now (runbook 002 §2.2 `cleanOldJobs`): completed and failed jobs outside
        `keep_completed` / `keep_failed`. Returns how many were removed."""
        now = now_ms(self.clock)
        total = 0
        for state, keep in ((JobState.COMPLETED, self.options.keep_completed),
                            (JobState.FAILED, self.options.keep_failed)):
            removed = await self.store.trim(state, now, keep)
            self._removed(state, removed, "retention")
            total += removed
        return total

    def _removed(self, state: JobState, count: int, reason: str) -> None:
        if count:
            self.listener(JobsRemoved(queue=self.name, state=state.value, count=count, reason=reason))

    async def pause(self) -> None:
        """Pause the whole queue, every worker in every process: active jobs finish, none start."""
        if await self.store.set_paused(True):
            self.listener(QueuePaused(queue=self.name))

    async def resume(self) -> None:
        if await self.store.set_paused(False):
            self.listener(QueueResumed(queue=self.name))
            self.doorbell.ring()

    async def is_paused(self) -> bool:
        return await self.store.is_paused()

    async def close(self) -> None:
        await self.store.close()
