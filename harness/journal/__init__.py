"""The run journal: typed events stamped with scenario time, the single source of truth of a run.

Checks and reports read the journal, never live objects. Every event has `t` (seconds since the
scenario started, on the scenario's clock, rounded to the microsecond) and a `kind`; the rest are
typed fields. Written as JSON Lines, one event per line, fields in declaration order, so the same
run gives the same bytes. Nothing here carries a token, a secret or a resource body: requests are
logged by URL path only (the query string can carry patient identifiers).

Modules: `base` (the event model, time stamps), `run` (scenario, faults, operations, checks),
`connector`, `resilience`, `systems`, `queue` and `sync` (the integration's events, each with its `*_entry`
mapping), `vendor` (what the vendors saw: `vendor.request`, from the simulators' request journals), `store`
(the `Journal` and its JSON Lines form). `integration_entry` maps any integration
event; `harness.runner.journal_listener` feeds it the lab's events.
"""

from __future__ import annotations

from harness.journal.base import Event, Scalar, stamp, wall_stamp
from harness.journal.connector import (
    BreakerEvent,
    CredentialRejectedEvent,
    RequestEvent,
    RetryEvent,
    ThrottledEvent,
    TokenFailedEvent,
    TokenIssuedEvent,
    TokenRefreshedEvent,
    VersionConflictEvent,
    connector_entry,
)
from harness.journal.queue import JobEvent, QueueEvent, queue_entry
from harness.journal.resilience import (
    DegradationActivatedEvent,
    DegradationClearedEvent,
    FlagChangedEvent,
    ProviderHealthEvent,
    resilience_entry,
)
from harness.journal.run import (
    CheckFailed,
    CheckPassed,
    FaultFailed,
    FaultStarted,
    FaultStopped,
    LabAborted,
    LabInconclusive,
    LabLag,
    LabTiming,
    OperationDropped,
    OperationEvent,
    ScenarioEnded,
    ScenarioStarted,
    StepDone,
    StepFailed,
)
from harness.journal.store import Journal, JournalEvent, parse_line, read_journal
from harness.journal.sync import (
    AuditMirrorEvent,
    AuditRecordedEvent,
    ConsentCheckedEvent,
    FhirSyncEvent,
    PhiScanEvent,
    ReconciliationEvent,
    sync_entry,
)
from harness.journal.systems import (
    FailoverExhaustedEvent,
    FailoverReadEvent,
    SyncCompletedEvent,
    SyncConflictsEvent,
    SyncStartedEvent,
    SyncSystemFailedEvent,
    systems_entry,
)
from harness.journal.vendor import VendorRequestEvent
from integrations.events import IntegrationEvent

_ENTRIES = (connector_entry, resilience_entry, systems_entry, queue_entry, sync_entry)


def integration_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for any integration event at scenario time `t` (None for one the journal skips)."""
    for entry in _ENTRIES:
        mapped = entry(event, t)
        if mapped is not None:
            return mapped
    return None


__all__ = [
    "AuditMirrorEvent",
    "AuditRecordedEvent",
    "BreakerEvent",
    "CheckFailed",
    "CheckPassed",
    "ConsentCheckedEvent",
    "CredentialRejectedEvent",
    "DegradationActivatedEvent",
    "DegradationClearedEvent",
    "Event",
    "FailoverExhaustedEvent",
    "FailoverReadEvent",
    "FaultFailed",
    "FaultStarted",
    "FaultStopped",
    "FhirSyncEvent",
    "FlagChangedEvent",
    "JobEvent",
    "Journal",
    "JournalEvent",
    "LabAborted",
    "LabInconclusive",
    "LabLag",
    "LabTiming",
    "OperationDropped",
    "OperationEvent",
    "PhiScanEvent",
    "ProviderHealthEvent",
    "QueueEvent",
    "ReconciliationEvent",
    "RequestEvent",
    "RetryEvent",
    "Scalar",
    "ScenarioEnded",
    "ScenarioStarted",
    "StepDone",
    "StepFailed",
    "SyncCompletedEvent",
    "SyncConflictsEvent",
    "SyncStartedEvent",
    "SyncSystemFailedEvent",
    "ThrottledEvent",
    "TokenFailedEvent",
    "TokenIssuedEvent",
    "TokenRefreshedEvent",
    "VendorRequestEvent",
    "VersionConflictEvent",
    "connector_entry",
    "integration_entry",
    "parse_line",
    "queue_entry",
    "read_journal",
    "resilience_entry",
    "stamp",
    "sync_entry",
    "systems_entry",
    "wall_stamp",
]
