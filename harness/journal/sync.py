"""Journal events of the sync pipeline (`integrations.sync`): consent checks, record syncs to Medplum,
enqueue failures, reconciliation and audit mirror runs. Kinds, record ids, organisation ids, correlation
ids, counts and error class names only: never a patient's data (the DESIGN's consent and PHI invariants
read `consent.checked` and `fhir_sync.*`)."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event, stamp
from integrations.events import (
    AuditMirrorCompleted,
    ConsentChecked,
    IntegrationEvent,
    ReconciliationCompleted,
    SyncCompleted,
    SyncEnqueueFailed,
    SyncFailed,
)

FhirSyncKind = Literal["fhir_sync.completed", "fhir_sync.failed", "fhir_sync.enqueue_failed"]


class ConsentCheckedEvent(Event):
    kind: Literal["consent.checked"] = "consent.checked"
    org_id: str
    status: str  # granted, denied, missing
    data_class: str
    purpose: str


class FhirSyncEvent(Event):
    """A record's sync to Medplum completed or failed, or its job could not be enqueued. Fields that do not
    apply to the kind are None."""

    kind: FhirSyncKind
    resource: str  # "encounter" or "observation"
    record_id: str
    correlation_id: str | None = None
    created: bool | None = None
    error: str | None = None


class ReconciliationEvent(Event):
    kind: Literal["reconciliation.completed"] = "reconciliation.completed"
    encounters_not_synced: int
    encounters_stale: int
    observations_not_synced: int
    observations_stale: int
    enqueued: int
    errors: int
    duration_ms: float


class AuditMirrorEvent(Event):
    kind: Literal["audit_mirror.completed"] = "audit_mirror.completed"
    fetched: int
    mirrored: int
    skipped: int
    errors: int


def sync_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for a sync pipeline event at scenario time `t`, else None."""
    match event:
        case ConsentChecked():
            return ConsentCheckedEvent(t=t, org_id=event.org_id, status=event.status, data_class=event.data_class,
                                       purpose=event.purpose)
        case SyncCompleted():
            return FhirSyncEvent(t=t, kind="fhir_sync.completed", resource=event.kind, record_id=event.record_id,
                                 correlation_id=event.correlation_id, created=event.created)
        case SyncFailed():
            return FhirSyncEvent(t=t, kind="fhir_sync.failed", resource=event.kind, record_id=event.record_id,
                                 correlation_id=event.correlation_id, error=event.error)
        case SyncEnqueueFailed():
            return FhirSyncEvent(t=t, kind="fhir_sync.enqueue_failed", resource=event.kind, record_id=event.record_id,
                                 error=event.error)
        case ReconciliationCompleted():
            return ReconciliationEvent(t=t, encounters_not_synced=event.encounters_not_synced,
                                       encounters_stale=event.encounters_stale,
                                       observations_not_synced=event.observations_not_synced,
                                       observations_stale=event.observations_stale, enqueued=event.enqueued,
                                       errors=event.errors, duration_ms=stamp(event.duration_s * 1000))
        case AuditMirrorCompleted():
            return AuditMirrorEvent(t=t, fetched=event.fetched, mirrored=event.mirrored, skipped=event.skipped,
                                    errors=event.errors)
    return None
