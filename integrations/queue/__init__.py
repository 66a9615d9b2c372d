"""A durable job queue with BullMQ's semantics (runbook 002_437ee203264dfa64.txt §2.2), on the injected
clock, over SQLite (embedded, the default) or Redis (several processes or hosts).

Why hand-written: no library offers asyncio workers, an injectable clock (so a queue runs in virtual
time), both an embedded SQLite store and Redis, and BullMQ's semantics (rate limit, attempts with
jittered exponential backoff, stalled-job recovery, retention, pause, failed-job retry). arq, saq and
the `bullmq` port are Redis-only and read the system clock; huey has SQLite and Redis but no asyncio
workers, no lock-based stalled recovery and no retention (`../shared/reference/practice.md` §6.2).
Everything underneath is a library: the stdlib `sqlite3` and redis-py, whose atomicity (`BEGIN
IMMEDIATE`, Lua scripts) the stores rely on.

```python
store = SqliteStore("queue.db", "fhir-sync")          # or RedisStore.connect("redis://...", "fhir-sync")
queue = JobQueue(store, clock, listener=listener)
await queue.add("encounter-sync", {"encounter": "enc_7f3a"}, job_id="encounter-sync:enc_7f3a")
async with Worker(queue, {"encounter-sync": handler}, rng=rng):
    ...
```

Parts: `model` (jobs, options, stats), `store` (the interface), `sqlite_store`, `redis_store` (+
`redis_scripts`), `job_queue` (producer and operator API), `worker` (claiming, running, locks,
stalled recovery), `checker` (Jepsen-style total-queue check), `errors` (the error tree).
"""

from integrations.queue.checker import TotalQueueResult, check_total_queue
from integrations.queue.errors import (
    InvalidJobState,
    JobNotFound,
    QueueError,
    StoreUnavailable,
    UnrecoverableJobError,
)
from integrations.queue.job_queue import JobQueue, JobSpec
from integrations.queue.model import (
    DAY_S,
    STALLED_REASON,
    Backoff,
    Job,
    JobState,
    JsonValue,
    KeepJobs,
    QueueOptions,
    QueueStats,
    RateLimit,
    WorkerOptions,
)
from integrations.queue.sqlite_store import SqliteStore
from integrations.queue.store import JobStore
from integrations.queue.worker import Handler, NoHandler, Worker

__all__ = [
    "DAY_S",
    "STALLED_REASON",
    "Backoff",
    "Handler",
    "InvalidJobState",
    "Job",
    "JobNotFound",
    "JobQueue",
    "JobSpec",
    "JobState",
    "JobStore",
    "JsonValue",
    "KeepJobs",
    "NoHandler",
    "QueueError",
    "QueueOptions",
    "QueueStats",
    "RateLimit",
    "SqliteStore",
    "StoreUnavailable",
    "TotalQueueResult",
    "UnrecoverableJobError",
    "Worker",
    "WorkerOptions",
    "check_total_queue",
]
