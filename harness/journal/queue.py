"""Journal events of the durable job queue (`integrations.queue`): one per job state change, one per
queue-level change. Queue names, job ids, job names, worker names and error class names only: never job
data or an error message (job ids are built from pseudonymous ids, see `integrations.events`)."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event, stamp
from integrations.events import (
    IntegrationEvent,
    JobAdded,
    JobCompleted,
    JobDuplicated,
    JobFailed,
    JobLockLost,
    JobPromoted,
    JobRetried,
    JobRetryScheduled,
    JobsRemoved,
    JobStalled,
    JobStarted,
    QueuePaused,
    QueueResumed,
    QueueStoreUnavailable,
)

JobKind = Literal["job.added", "job.duplicated", "job.promoted", "job.started", "job.completed", "job.retry",
                  "job.failed", "job.stalled", "job.lock_lost", "job.retried"]
QueueKind = Literal["queue.paused", "queue.resumed", "queue.removed", "queue.store_unavailable"]


class JobEvent(Event):
    """A job changed state. Fields that do not apply to the kind are None (`attempt`: the attempt that
    started, completed or failed; `attempts`: the attempts allowed on add, or made on failure)."""

    kind: JobKind
    queue: str
    job_id: str
    name: str
    worker: str | None = None
    attempt: int | None = None
    attempts: int | None = None
    delay_s: float | None = None
    duration_ms: float | None = None
    error: str | None = None
    stalled_count: int | None = None
    failed: bool | None = None


class QueueEvent(Event):
    """The queue as a whole changed: paused, resumed, finished jobs removed, its store unreachable."""

    kind: QueueKind
    queue: str
    state: str | None = None  # queue.removed: "completed" or "failed"
    count: int | None = None
    reason: str | None = None  # queue.removed: "retention" or "clean"
    worker: str | None = None
    operation: str | None = None
    error: str | None = None


def queue_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for a job queue event at scenario time `t`, else None."""
    match event:
        case JobAdded():
            return JobEvent(t=t, kind="job.added", queue=event.queue, job_id=event.job_id, name=event.name,
                            delay_s=stamp(event.delay_s), attempts=event.attempts)
        case JobDuplicated():
            return JobEvent(t=t, kind="job.duplicated", queue=event.queue, job_id=event.job_id, name=event.name)
        case JobPromoted():
            return JobEvent(t=t, kind="job.promoted", queue=event.queue, job_id=event.job_id, name=event.name)
        case JobRetried():
            return JobEvent(t=t, kind="job.retried", queue=event.queue, job_id=event.job_id, name=event.name)
        case JobStarted():
            return JobEvent(t=t, kind="job.started", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker, attempt=event.attempt)
        case JobCompleted():
            return JobEvent(t=t, kind="job.completed", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker, attempt=event.attempt, duration_ms=round(event.duration_s * 1000, 3))
        case JobRetryScheduled():
            return JobEvent(t=t, kind="job.retry", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker, attempt=event.attempt, delay_s=stamp(event.delay_s),
                            error=event.error)
        case JobFailed():
            return JobEvent(t=t, kind="job.failed", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker, attempts=event.attempts_made, error=event.error)
        case JobStalled():
            return JobEvent(t=t, kind="job.stalled", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker, stalled_count=event.stalled_count, failed=event.failed)
        case JobLockLost():
            return JobEvent(t=t, kind="job.lock_lost", queue=event.queue, job_id=event.job_id, name=event.name,
                            worker=event.worker)
        case QueuePaused():
            return QueueEvent(t=t, kind="queue.paused", queue=event.queue)
        case QueueResumed():
            return QueueEvent(t=t, kind="queue.resumed", queue=event.queue)
        case JobsRemoved():
            return QueueEvent(t=t, kind="queue.removed", queue=event.queue, state=event.state, count=event.count,
                              reason=event.reason)
        case QueueStoreUnavailable():
            return QueueEvent(t=t, kind="queue.store_unavailable", queue=event.queue, worker=event.worker,
                              operation=event.operation, error=event.error)
    return None
