"""The job queue's typed model: jobs, their states, and the queue's and workers' options.

Defaults are runbook `002_437ee203264dfa64.txt §2.2`'s BullMQ configuration: concurrency 5, a rate limit
of 10 jobs per second, 3 attempts with exponential backoff from 1 s (1 s, 2 s, 4 s ...), completed jobs
kept 7 days and failed jobs 30 days. The jitter, ±25 % of each delay, is runbook §2.1's ("Exponential
Backoff: 1s → 10s max with ±25% jitter"); BullMQ's own jitter only shortens a delay.

Every time a store keeps is an integer number of milliseconds since the Unix epoch on the queue's
clock (`Clock.now()`), as BullMQ keeps them: integers compare exactly, so a worker that sleeps until a
job is due finds it due, on the virtual clock as on the real one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, cast

from integrations.clock import Clock

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

DAY_S = 86_400.0


class JobState(StrEnum):
    WAITING = "waiting"  # ready to run, in FIFO order (counted as `paused` while the queue is paused)
    ACTIVE = "active"  # a worker holds its lock and runs it
    DELAYED = "delayed"  # not before `due_ms`: a delayed job, or a failed attempt waiting out its backoff
    COMPLETED = "completed"
    FAILED = "failed"  # every attempt failed, or the handler gave up (UnrecoverableJobError), or it stalled too often


def now_ms(clock: Clock) -> int:
    """The clock's wall time in whole milliseconds since the epoch."""
    return round(clock.now().timestamp() * 1000)


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def dump_json(value: JsonValue) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def load_json(text: str) -> JsonValue:
    return cast(JsonValue, json.loads(text))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt n+1 after n failed attempts: `delay_s * 2**(n-1)` (exponential) or `delay_s`
    (fixed), then ±`jitter` of that, drawn from the worker's seeded random stream."""

    kind: Literal["exponential", "fixed"] = "exponential"
    delay_s: float = 1.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError("backoff delay_s must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be within [0, 1]")
        if self.kind not in ("exponential", "fixed"):
            raise ValueError(f"unknown backoff kind {self.kind!r}")

    def base_delay_s(self, attempts_made: int) -> float:
        if self.kind == "fixed":
            return self.delay_s
        return self.delay_s * 2.0 ** max(0, attempts_made - 1)

    def delay_s_for(self, attempts_made: int, rng: random.Random) -> float:
        base = self.base_delay_s(attempts_made)
        if self.jitter == 0:
            return base
        return base * (1.0 + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class KeepJobs:
    """Retention of finished jobs: those older than `age_s` and those beyond the newest `count` are removed
    (None: no limit). Removal is lazy, as in BullMQ: it happens when a job finishes, and on `clean_old()`."""

    age_s: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.age_s is not None and self.age_s < 0:
            raise ValueError("age_s must be >= 0")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """A queue's defaults for the jobs added to it, and its retention (runbook 002 §2.2)."""

    attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    keep_completed: KeepJobs = field(default_factory=lambda: KeepJobs(age_s=7 * DAY_S))
    keep_failed: KeepJobs = field(default_factory=lambda: KeepJobs(age_s=30 * DAY_S))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max` jobs start in any `duration_s` window, across every worker of the queue (runbook
    002 §2.2: 10 per 1000 ms). A sliding window: stricter than BullMQ's fixed one, which lets up to
    2 x max start across a window boundary."""

    max: int = 10
    duration_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max < 1 or self.duration_s <= 0:
            raise ValueError("rate limit needs max >= 1 and duration_s > 0")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How one worker runs jobs. `concurrency` is this worker's parallel jobs (runbook 002 §2.2: 5);
    `global_concurrency` caps active jobs across all workers of the queue (None: no cap).

    A worker holds a lock on each job it runs for `lock_duration_s`, renewed every `lock_renew_s`
    (default half of it). Every `stalled_interval_s` (and when it starts) it takes back jobs whose lock
    has expired, their worker presumably dead: back to the front of the queue, or failed once they have
    stalled more than `max_stalled_count` times (BullMQ's defaults: 30 s, 30 s, 1).

    A job added through the worker's own `JobQueue` wakes it at once; one added by another process is
    seen within `poll_interval_s`. While the store is unavailable it retries after `store_retry_s`.
    """

    name: str = "worker"
    concurrency: int = 5
    limiter: RateLimit | None = field(default_factory=RateLimit)
    global_concurrency: int | None = None
    lock_duration_s: float = 30.0
    lock_renew_s: float | None = None
    stalled_interval_s: float = 30.0
    max_stalled_count: int = 1
    poll_interval_s: float = 1.0
    store_retry_s: float = 0.5

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.global_concurrency is not None and self.global_concurrency < 1:
            raise ValueError("global_concurrency must be >= 1")
        if self.lock_duration_s <= 0 or self.stalled_interval_s <= 0 or self.poll_interval_s <= 0:
            raise ValueError("lock_duration_s, stalled_interval_s and poll_interval_s must be > 0")
        if self.lock_renew_s is not None and not 0 < self.lock_renew_s < self.lock_duration_s:
            raise ValueError("lock_renew_s must be > 0 and shorter than lock_duration_s")
        if self.max_stalled_count < 0:
            raise ValueError("max_stalled_count must be >= 0")

    @property
    def renew_every_s(self) -> float:
        return self.lock_renew_s if self.lock_renew_s is not None else self.lock_duration_s / 2


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the store holds it. `attempts_made` counts failed attempts; `stalled_count` the times it
    was taken back from a worker that stopped renewing its lock. Times are epoch milliseconds."""

    id: str
    name: str
    data: JsonValue
    state: JobState
    attempts: int
    backoff: Backoff
    attempts_made: int
    stalled_count: int
    created_ms: int
    due_ms: int | None  # delayed: when it becomes waiting
    processed_ms: int | None  # when the latest attempt started
    finished_ms: int | None
    failed_reason: str | None
    result: JsonValue

    @property
    def attempt(self) -> int:
        """The attempt this job is on (or was on, once finished), 1 for the first."""
        return self.attempts_made + 1


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add: `id` None lets the store number it; `due_ms` None makes it waiting at once."""

    name: str
    data: str  # JSON text
    id: str | None
    attempts: int
    backoff: Backoff
    created_ms: int
    due_ms: int | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts per state, shaped as runbook 002 §6.3's `GET /fhir/admin/queue/stats` answer."""

    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: int

    @property
    def pending(self) -> int:
        """Jobs not finished yet: waiting, paused, active or delayed."""
        return self.waiting + self.active + self.delayed + self.paused


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One worker's request for up to `limit` jobs, locked with `token` until `lock_until_ms`."""

    now_ms: int
    token: str
    lock_until_ms: int
    limit: int
    rate_max: int | None = None
    rate_window_ms: int | None = None
    global_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Promoted:
    """A delayed job that became waiting."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim got: the jobs now active, the delayed jobs it promoted, and when to ask again
    (`wake_ms`: the next delayed job or the end of the rate limit's wait; None: only when told)."""

    jobs: list[Job]
    promoted: list[Promoted]
    wake_ms: int | None
    paused: bool
    rate_limited: bool


@dataclass(frozen=True, slots=True)
class Finished:
    """A completion or failure: `ok` False when the worker no longer held the job's lock (the job was
    taken back as stalled: the outcome was discarded); `removed` jobs fell out of retention."""

    ok: bool
    removed: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """A job a worker finished: its id, the token it was claimed with, and its result (JSON text)."""

    job_id: str
    token: str
    result: str


@dataclass(frozen=True, slots=True)
class Completed:
    """Completions recorded together: `ok[i]` False where the worker no longer held job i's lock; `removed`
    jobs fell out of retention."""

    ok: list[bool]
    removed: int = 0


@dataclass(frozen=True, slots=True)
class Stalled:
    """A job taken back from a worker whose lock expired: to the front of the queue, or failed."""

    id: str
    name: str
    stalled_count: int
    failed: bool


STALLED_REASON = "job stalled more than allowable limit"
