"""Journal events of the sync pipeline (`integrations.sync`): consent checks, record syncs to Medplum,
enqueue failures, reconciliation and audit mirror runs. Kinds, record ids, organisation ids, correlation
ids, counts and error class names only: never a patient's data (the DESIGN's consent and PHI invariants
read `consent.checked` and `fhir_sync.*`)."""

from __future__ import annotations

import hashlib
from typing import Literal

from harness.journal.base import Event, stamp
from integrations.events import (
    AuditMirrorCompleted,
    AuditRecorded,
    ConsentChecked,
    IntegrationEvent,
    ReconciliationCompleted,
    SyncCompleted,
    SyncEnqueueFailed,
    SyncFailed,
)


def subject_of(patient_token: str | None) -> str | None:
    """A stable stand-in for a patient token in the journal: the first 12 hex digits of its SHA-256. Checks
    can follow one patient across consent checks and syncs; the journal never carries the token itself
    (a pseudonymous key into the application's records, so a lookup key all the same)."""
    if not patient_token:
        return None
    return "sub-" + hashlib.sha256(patient_token.encode("utf-8")).hexdigest()[:12]


FhirSyncKind = Literal["fhir_sync.completed", "fhir_sync.failed", "fhir_sync.enqueue_failed"]


class ConsentCheckedEvent(Event):
    kind: Literal["consent.checked"] = "consent.checked"
    org_id: str
    status: str  # granted, denied, missing
    data_class: str
    purpose: str
    subject: str | None = None  # `subject_of(patient token)`: which patient, without the token
    correlation_id: str | None = None  # the sync attempt that asked, if one did


class FhirSyncEvent(Event):
    """A record's sync to Medplum completed or failed, or its job could not be enqueued. Fields that do not
    apply to the kind are None."""

    kind: FhirSyncKind
    resource: str  # "encounter" or "observation"
    record_id: str
    correlation_id: str | None = None
    created: bool | None = None
    error: str | None = None
    subject: str | None = None  # `subject_of(patient token)`


class AuditRecordedEvent(Event):
    """An audit event was written (runbook 002 §3.3, `AuditTrail.record`): `event_type` FHIR_SYNC,
    FHIR_SYNC_FAILED, FHIR_INGRESS ...; `outcome` success, failure or denied. Ids only, never a value."""

    kind: Literal["audit.recorded"] = "audit.recorded"
    event_type: str
    org_id: str
    correlation_id: str
    resource_type: str | None
    resource_id: str | None
    outcome: str


class PhiScanEvent(Event):
    """A resource Medplum holds for the integration, checked for PHI by the lab at the end of a run
    (`integrations.sync.deid.phi_violations`; empty `phi_elements` when clean). Element names, never values."""

    kind: Literal["phi.scan"] = "phi.scan"
    vendor: str
    resource_type: str
    resource_id: str
    correlation_id: str | None
    phi_elements: tuple[str, ...]


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
                                       purpose=event.purpose, subject=subject_of(event.patient_token),
                                       correlation_id=event.correlation_id)
        case SyncCompleted():
            return FhirSyncEvent(t=t, kind="fhir_sync.completed", resource=event.kind, record_id=event.record_id,
                                 correlation_id=event.correlation_id, created=event.created,
                                 subject=subject_of(event.patient_token))
        case SyncFailed():
            return FhirSyncEvent(t=t, kind="fhir_sync.failed", resource=event.kind, record_id=event.record_id,
                                 correlation_id=event.correlation_id, error=event.error,
                                 subject=subject_of(event.patient_token))
        case AuditRecorded():
            return AuditRecordedEvent(t=t, event_type=event.event_type, org_id=event.org_id,
                                      correlation_id=event.correlation_id, resource_type=event.resource_type,
                                      resource_id=event.resource_id, outcome=event.outcome)
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
