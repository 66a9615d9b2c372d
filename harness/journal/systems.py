"""Journal events of the multi-system components (`integrations.systems`): read failover and patient sync.
System ids, error class names, field paths and counts, never a value."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event
from integrations.events import (
    IntegrationEvent,
    PatientConflictsFound,
    PatientSyncCompleted,
    PatientSyncStarted,
    PatientSyncSystemFailed,
    ReadFailedOver,
    ReadFailoverExhausted,
)


class FailoverReadEvent(Event):
    """A read the primary system could not serve was served by another system (integrations.systems)."""

    kind: Literal["failover.read"] = "failover.read"
    resource_type: str
    primary: str
    served_by: str
    reason: str
    systems_tried: int


class FailoverExhaustedEvent(Event):
    kind: Literal["failover.exhausted"] = "failover.exhausted"
    resource_type: str
    primary: str
    systems: tuple[str, ...]
    reasons: tuple[str, ...]


class SyncStartedEvent(Event):
    kind: Literal["sync.start"] = "sync.start"
    sync_id: str
    systems: tuple[str, ...]


class SyncSystemFailedEvent(Event):
    kind: Literal["sync.system_failed"] = "sync.system_failed"
    sync_id: str
    system: str
    reason: str


class SyncConflictsEvent(Event):
    """Field paths and a count only: never a value."""

    kind: Literal["sync.conflicts"] = "sync.conflicts"
    sync_id: str
    conflicts: int
    fields: tuple[str, ...]


class SyncCompletedEvent(Event):
    kind: Literal["sync.end"] = "sync.end"
    sync_id: str
    fetched: int
    failed: int
    conflicts: int
    duration_ms: float


def systems_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for a multi-system event (registry, failover, patient sync) at scenario time `t`,
    else None."""
    if isinstance(event, ReadFailedOver):
        return FailoverReadEvent(t=t, resource_type=event.resource_type, primary=event.primary,
                                 served_by=event.served_by, reason=event.reason, systems_tried=event.systems_tried)
    if isinstance(event, ReadFailoverExhausted):
        return FailoverExhaustedEvent(t=t, resource_type=event.resource_type, primary=event.primary,
                                      systems=event.systems, reasons=event.reasons)
    if isinstance(event, PatientSyncStarted):
        return SyncStartedEvent(t=t, sync_id=event.sync_id, systems=event.systems)
    if isinstance(event, PatientSyncSystemFailed):
        return SyncSystemFailedEvent(t=t, sync_id=event.sync_id, system=event.system, reason=event.reason)
    if isinstance(event, PatientConflictsFound):
        return SyncConflictsEvent(t=t, sync_id=event.sync_id, conflicts=event.conflicts, fields=event.fields)
    if isinstance(event, PatientSyncCompleted):
        return SyncCompletedEvent(t=t, sync_id=event.sync_id, fetched=event.fetched, failed=event.failed,
                                  conflicts=event.conflicts, duration_ms=round(event.duration_s * 1000, 3))
    return None
