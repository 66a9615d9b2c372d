"""The store interface both backends implement (`SqliteStore`, `RedisStore`), and which the shared test
suite runs against.

Every method is one atomic step on the durable state of one queue: no other process sees half of it.
The store knows no clock and no randomness: callers pass the time (`now_ms`, epoch milliseconds from
the queue's `Clock`) and the backoff they drew. It emits no events: it returns what it did, and
`JobQueue` / `Worker` turn that into events.

Methods that need the worker's lock (`complete`, `retry_later`, `fail`, `extend_locks`) check the token
the job was claimed with; a job taken back as stalled has a new token, so a late outcome from the
worker that lost it is refused (`ok` False) rather than overwriting the new run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from integrations.queue.model import (
    Claim,
    ClaimRequest,
    Completed,
    Completion,
    Finished,
    Job,
    JobState,
    KeepJobs,
    NewJob,
    QueueStats,
    Stalled,
)


class JobStore(Protocol):
    """The durable state of one named queue."""

    @property
    def queue(self) -> str:
        """The queue's name."""
        ...

    async def add(self, jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        """Add jobs in order; a job whose id is taken is not added (`False`, with the job that holds it)."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def claim(self, request: ClaimRequest) -> Claim:
        """Promote due delayed jobs, then move up to `limit` waiting jobs to active, oldest first, within
        the rate limit and the global concurrency; none while the queue is paused."""
        ...

    async def extend_locks(self, locks: Sequence[tuple[str, str]], until_ms: int) -> list[str]:
        """Extend the locks of `(job_id, token)` pairs; returns the ids whose lock this token no longer holds."""
        ...

    async def complete(self, completions: Sequence[Completion], now_ms: int, keep: KeepJobs) -> Completed:
        """Active -> completed, with their results, in one step (a worker sends the jobs that finished
        together); then apply retention to completed jobs."""
        ...

    async def retry_later(self, job_id: str, token: str, now_ms: int, due_ms: int, reason: str) -> Finished:
        """A failed attempt with attempts left: active -> delayed until `due_ms` (waiting if already due)."""
        ...

    async def fail(self, job_id: str, token: str, now_ms: int, reason: str, keep: KeepJobs) -> Finished:
        """A failed last attempt: active -> failed, then apply retention to failed jobs."""
        ...

    async def recover_stalled(self, now_ms: int, max_stalled_count: int, keep: KeepJobs) -> list[Stalled]:
        """Active jobs whose lock expired before `now_ms`: back to the front of the queue, or failed when
        they have now stalled more than `max_stalled_count` times."""
        ...

    async def retry_failed(self, job_id: str | None, now_ms: int) -> list[Job]:
        """Failed -> waiting with attempts reset: one job (`JobNotFound`, `InvalidJobState`) or, with
        None, every failed job. Returns the jobs retried, as they were when they failed."""
        ...

    async def trim(self, state: JobState, now_ms: int, keep: KeepJobs, limit: int | None = None) -> int:
        """Remove completed or failed jobs outside `keep` (at most `limit`); returns how many."""
        ...

    async def set_paused(self, paused: bool) -> bool:
        """Pause or resume the whole queue; returns whether that changed anything."""
        ...

    async def is_paused(self) -> bool: ...

    async def stats(self) -> QueueStats: ...

    async def jobs(self, state: JobState, limit: int, offset: int = 0) -> list[Job]:
        """Jobs in one state: waiting in queue order, delayed by due time, active by lock expiry,
        completed and failed newest first."""
        ...

    async def close(self) -> None: ...
