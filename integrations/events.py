"""Events the integration components emit, and the listener interface that receives them.

Components never write the lab's journal themselves: they call an `EventListener` (a no-op by
default), and whoever runs them decides what to do with the events. The lab turns them into journal
events stamped with scenario time; a production deployment could turn them into logs or metrics.
No event carries a token, a secret or a resource body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"  # an operator forced it open: every call refused until reset (resilience4j)
    DISABLED = "DISABLED"  # an operator disabled it: every call permitted, nothing recorded (resilience4j)


class HealthStatus(StrEnum):
    """A provider's health by runbook 000_030ea53f0735abf7.txt §7's bands (Healthy / Warning / Critical)."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"


@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """One HTTP attempt finished, with a response or with a transport error."""

    vendor: str
    method: str
    path: str  # URL path only: the query string may carry patient identifiers
    status: int | None  # None when no response arrived
    duration_s: float
    attempt: int  # 1 for the first try
    error: str | None  # connector error class name, None on success
    correlation_id: str


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A failed attempt will be retried after `delay_s`."""

    vendor: str
    attempt: int  # the attempt that failed
    delay_s: float
    reason: str  # error class name
    retry_after_s: float | None  # the server's Retry-After, when it gave one


@dataclass(frozen=True, slots=True)
class BreakerTransitioned:
    """A circuit breaker changed state."""

    name: str
    from_state: BreakerState
    to_state: BreakerState
    failure_rate: float | None  # over the window at the time of the transition, when known
    calls: int  # calls in the window
    slow_call_rate: float | None = None  # share of the window's calls slower than the slow-call threshold
    manual: bool = False  # an operator asked for it (transition_to, force_open, disable, reset)


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """An access token was obtained (`refresh` False for the first one)."""

    vendor: str
    expires_in_s: float
    refresh: bool
    reason: str  # "initial", "expiring", "rejected" (a 401 forced it)


@dataclass(frozen=True, slots=True)
class TokenRequestFailed:
    """The token endpoint refused or could not be reached."""

    vendor: str
    status: int | None
    error: str  # OAuth error code or error class name; never the description's secrets


@dataclass(frozen=True, slots=True)
class CredentialRejected:
    """The vendor refused one of the client's credentials (revoked, wrong, or not registered yet).

    Audit-worthy: emitted once per refusal, not once per call. `fallback` True: another credential was
    left to try (the rotation overlap). Names the credential by its label, never its value.
    """

    vendor: str
    credential: str  # label: an environment variable's name, a file entry's label, a key id
    status: int | None
    error: str  # OAuth error code (or error class name)
    fallback: bool


@dataclass(frozen=True, slots=True)
class RequestThrottled:
    """The client-side rate limiter held a call back (`refused` False: it waits `wait_s`), or refused it
    because the wait would exceed its `max_wait_s` (`refused` True: nothing was sent)."""

    vendor: str
    wait_s: float
    limit: int  # requests allowed per window
    window_s: float
    refused: bool
    correlation_id: str


@dataclass(frozen=True, slots=True)
class VersionConflict:
    """An If-Match update hit a stale version (412, or Cerner's 409); `merged` True: the caller's merge
    callback re-applied the change to the fresh version and the update is being sent again."""

    vendor: str
    resource_type: str
    status: int
    attempt: int  # 1 for the first update that conflicted
    merged: bool
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class ProviderHealthChanged:
    """A provider monitor's status moved between HEALTHY / DEGRADED / UNHEALTHY (runbook 000 §7)."""

    vendor: str
    from_status: HealthStatus
    to_status: HealthStatus
    success_rate: float | None  # over the monitor's window; None when it holds too few samples
    avg_latency_s: float | None
    p95_latency_s: float | None
    samples: int
    breaker_state: BreakerState | None


@dataclass(frozen=True, slots=True)
class DegradationActivated:
    """Reads are served from the cached patient context (runbook 000 §2 "Fallback mode activates")."""

    vendor: str
    reasons: tuple[str, ...]  # "breaker_open", "breaker_half_open", "provider_unhealthy", "reads_disabled"
    cached_entries: int  # how many cached reads/searches can be served; never which ones


@dataclass(frozen=True, slots=True)
class DegradationCleared:
    """The provider recovered: reads go to it again."""

    vendor: str
    duration_s: float
    served_from_cache: int  # reads answered from the cache during the episode
    unavailable: int  # reads that found nothing cached ("EHR temporarily unavailable")


@dataclass(frozen=True, slots=True)
class FeatureFlagChanged:
    """A feature flag (or one user's override of it) changed (runbook 000 §3, §8)."""

    flag: str
    enabled: bool | None  # None: a user override was removed
    previous: bool | None
    scope: str  # "global" or "user"
    user_ref: str | None  # a pseudonym of the user for overrides, never the user id itself
    batch_size: int  # flags changed together in one batch update (1 for a single update)


@dataclass(frozen=True, slots=True)
class ReadFailedOver:
    """A read the primary system could not serve was served by another system holding the same patient
    (found by identifier; runbook 004_bc3882054056792c.txt "Connection Management": "Automatic failover").
    No identifier, no id."""

    resource_type: str
    primary: str  # system id
    served_by: str  # system id
    reason: str  # why the primary was passed over: an error class name ("CircuitOpen", "ConnectionFailed" ...)
    systems_tried: int  # systems asked before the one that served, the primary included


@dataclass(frozen=True, slots=True)
class ReadFailoverExhausted:
    """No configured system could serve a read; `reasons[i]` is why `systems[i]` did not."""

    resource_type: str
    primary: str
    systems: tuple[str, ...]
    reasons: tuple[str, ...]  # error class names, "not_found" or "ambiguous"


@dataclass(frozen=True, slots=True)
class PatientSyncStarted:
    """A multi-system patient sync began (runbook 004 "Multi-System Synchronization")."""

    sync_id: str
    systems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientSyncSystemFailed:
    """One system gave no usable record during a sync; the sync goes on with the others."""

    sync_id: str
    system: str
    reason: str  # error class name, "not_found" or "ambiguous"


@dataclass(frozen=True, slots=True)
class PatientConflictsFound:
    """The systems' records of one patient disagree: how many fields, and which field paths. Never values."""

    sync_id: str
    conflicts: int
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientSyncCompleted:
    sync_id: str
    fetched: int  # systems whose record was compared
    failed: int
    conflicts: int
    duration_s: float


# --- job queue (integrations.queue): one event per job state change. Job ids and job names only: never job
# data, never an error message (error class names). Build custom job ids from pseudonymous ids, not identifiers.


@dataclass(frozen=True, slots=True)
class JobAdded:
    """A job entered the queue: waiting, or delayed by `delay_s`."""

    queue: str
    job_id: str
    name: str
    delay_s: float
    attempts: int


@dataclass(frozen=True, slots=True)
class JobDuplicated:
    """An add named a job id the queue already holds: nothing was added (de-duplication)."""

    queue: str
    job_id: str
    name: str


@dataclass(frozen=True, slots=True)
class JobPromoted:
    """A delayed job (or one waiting out its backoff) became waiting."""

    queue: str
    job_id: str
    name: str


@dataclass(frozen=True, slots=True)
class JobStarted:
    """A worker took the job (waiting -> active) for its `attempt`th attempt."""

    queue: str
    job_id: str
    name: str
    attempt: int
    worker: str


@dataclass(frozen=True, slots=True)
class JobCompleted:
    queue: str
    job_id: str
    name: str
    attempt: int
    worker: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class JobRetryScheduled:
    """An attempt failed with attempts left: the job is delayed by `delay_s` (its backoff)."""

    queue: str
    job_id: str
    name: str
    attempt: int  # the attempt that failed
    delay_s: float
    error: str  # error class name
    worker: str


@dataclass(frozen=True, slots=True)
class JobFailed:
    """The job failed for good: its last attempt failed, or its handler gave up."""

    queue: str
    job_id: str
    name: str
    attempts_made: int
    error: str  # error class name
    worker: str


@dataclass(frozen=True, slots=True)
class JobStalled:
    """A job whose worker stopped renewing its lock was taken back: to the front of the queue, or failed
    (`failed`) once it stalled more than the maximum."""

    queue: str
    job_id: str
    name: str
    stalled_count: int
    failed: bool
    worker: str  # the worker that found it


@dataclass(frozen=True, slots=True)
class JobLockLost:
    """A worker finished a job it no longer held (taken back as stalled): its outcome was discarded."""

    queue: str
    job_id: str
    name: str
    worker: str


@dataclass(frozen=True, slots=True)
class JobRetried:
    """An operator retried a failed job (failed -> waiting, attempts reset)."""

    queue: str
    job_id: str
    name: str


@dataclass(frozen=True, slots=True)
class JobsRemoved:
    """Finished jobs were removed: by retention (`reason` "retention") or by an operator's clean ("clean")."""

    queue: str
    state: str  # "completed" or "failed"
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class QueuePaused:
    queue: str


@dataclass(frozen=True, slots=True)
class QueueResumed:
    queue: str


@dataclass(frozen=True, slots=True)
class QueueStoreUnavailable:
    """The queue's store could not be reached; the worker retries on its clock."""

    queue: str
    worker: str
    operation: str
    error: str  # error class name


# --- sync pipeline (integrations.sync): consent checks, sync outcomes, reconciliation and audit mirror runs.
# Record ids, kinds, organisation ids, correlation ids, counts and error class names only: never a patient's
# data, never an error message.


@dataclass(frozen=True, slots=True)
class ConsentChecked:
    """The consent gate answered (runbook 002 §3.2): `status` "granted", "denied" or "missing"."""

    org_id: str
    status: str
    data_class: str
    purpose: str
    patient_token: str = ""  # pseudonymous (002 §3.2), never a name or identifier
    correlation_id: str | None = None  # the sync attempt or export that asked, when one did


@dataclass(frozen=True, slots=True)
class SyncCompleted:
    """A local record was upserted to Medplum (`created` True: its first sync)."""

    kind: str  # "encounter" or "observation"
    record_id: str
    correlation_id: str
    created: bool
    patient_token: str | None = None


@dataclass(frozen=True, slots=True)
class SyncFailed:
    """A sync attempt failed (`error` "ConsentDenied" for a consent refusal, else an error class name)."""

    kind: str
    record_id: str
    correlation_id: str
    error: str
    patient_token: str | None = None  # None when the record was not found


@dataclass(frozen=True, slots=True)
class AuditRecorded:
    """An audit event was written (runbook 002 §3.3, `AuditTrail.record`): types, ids and outcome only."""

    event_type: str
    org_id: str
    correlation_id: str
    resource_type: str | None
    resource_id: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class SyncEnqueueFailed:
    """A local write committed but its sync job could not be enqueued (`error` a class name, or
    "ConsentDenied" when the enqueue-time consent check refused); reconciliation will find the record."""

    kind: str
    record_id: str
    error: str


@dataclass(frozen=True, slots=True)
class ReconciliationCompleted:
    """A reconciliation run finished (runbook 002 §2.4): per kind, records found and jobs enqueued."""

    encounters_not_synced: int
    encounters_stale: int
    observations_not_synced: int
    observations_stale: int
    enqueued: int
    errors: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class AuditMirrorCompleted:
    """An audit mirror run finished (runbook 002 §2.6)."""

    fetched: int
    mirrored: int
    skipped: int
    errors: int


IntegrationEvent = (
    AuditRecorded
    | RequestCompleted
    | RetryScheduled
    | BreakerTransitioned
    | TokenIssued
    | TokenRequestFailed
    | CredentialRejected
    | RequestThrottled
    | VersionConflict
    | ProviderHealthChanged
    | DegradationActivated
    | DegradationCleared
    | FeatureFlagChanged
    | ReadFailedOver
    | ReadFailoverExhausted
    | PatientSyncStarted
    | PatientSyncSystemFailed
    | PatientConflictsFound
    | PatientSyncCompleted
    | JobAdded
    | JobDuplicated
    | JobPromoted
    | JobStarted
    | JobCompleted
    | JobRetryScheduled
    | JobFailed
    | JobStalled
    | JobLockLost
    | JobRetried
    | JobsRemoved
    | QueuePaused
    | QueueResumed
    | QueueStoreUnavailable
    | ConsentChecked
    | SyncCompleted
    | SyncFailed
    | SyncEnqueueFailed
    | ReconciliationCompleted
    | AuditMirrorCompleted
)


class EventListener(Protocol):
    def __call__(self, event: IntegrationEvent) -> None: ...


def ignore_event(event: IntegrationEvent) -> None:
    """The default listener: drop the event."""
