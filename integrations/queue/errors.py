"""The job queue's errors: one tree, raised by `JobQueue`, `Worker` and the stores.

```
QueueError                  root of this package's failures
├── StoreUnavailable        the store could not be reached or did not answer (Redis down or restarting,
│                           SQLite locked past its busy timeout); the operation may be retried
├── JobNotFound             no job with this id in this queue
└── InvalidJobState         the job is not in the state the operation needs (retrying a job that has not failed)
```

Not in the tree, as in the rest of `integrations`: bad configuration or arguments raise `ValueError`.
`UnrecoverableJobError` is not a queue failure either: a job handler raises it to fail the job at once,
without its remaining attempts (BullMQ's `UnrecoverableError`). Both roots are branches of the
integration's one root, `integrations.errors.IntegrationError`.

Messages name the queue and the job id, never job data.
"""

from __future__ import annotations

from integrations.errors import IntegrationError


class QueueError(IntegrationError):
    """Root of the job queue's failures."""

    def __init__(self, message: str, *, queue: str) -> None:
        self.queue = queue
        super().__init__(message)


class StoreUnavailable(QueueError):
    """The store could not be reached or answered with a transient error; the operation may be retried."""

    def __init__(self, message: str, *, queue: str, operation: str) -> None:
        self.operation = operation
        super().__init__(message, queue=queue)


class JobNotFound(QueueError):
    """No job with this id in this queue."""

    def __init__(self, job_id: str, *, queue: str) -> None:
        self.job_id = job_id
        super().__init__(f"queue {queue!r}: no job {job_id!r}", queue=queue)


class InvalidJobState(QueueError):
    """The job is not in the state the operation needs."""

    def __init__(self, job_id: str, state: str, expected: str, *, queue: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"queue {queue!r}: job {job_id!r} is {state}, not {expected}", queue=queue)


class UnrecoverableJobError(IntegrationError):
    """Raised by a job handler: fail the job now, without the attempts it has left."""
