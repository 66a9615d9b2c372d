"""The sync pipeline's typed model: consent, the local records, requesters, and the result objects of
runbook 002_437ee203264dfa64.txt (§2.4 reconciliation result, §6.1 ingress answers, §6.2 export audit,
§6.3 reconciliation stats, §3.3 audit events), each with `.to_json()` in the runbook's camelCase shape.

Clinical fields are typed and coded (`EncounterDetails`, `ObservationDetails`): codes and units must be
code-like tokens (`CODE`, `UNIT`), so no free text can hide in them; the only free text a record holds is
`notes`, which the de-identified mapping (`integrations.sync.deid`) never sends anywhere.

Times are timezone-aware UTC `datetime`s from the injected clock; the database keeps them as integer
milliseconds since the epoch (as the job queue does), so comparisons are exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Literal

from integrations.sync.ingress_results import BatchItem, BatchResult, IngressResult

#: A patient token: `pt_` and 1-60 letters or digits (pseudonymous; its FHIR id is `pt-...`, see `deid`).
PATIENT_TOKEN = re.compile(r"pt_[A-Za-z0-9]{1,60}")
#: A code (LOINC, ICD-10, v3 ActCode, a status): letters, digits and `.-_:`, no spaces, at most 64.
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_:]{0,63}")
#: A UCUM-like unit: no spaces, at most 32.
UNIT = re.compile(r"[A-Za-z0-9%/.\[\]{}*^'\-]{1,32}")
#: A code system: an http(s) or urn URI without spaces.
SYSTEM = re.compile(r"(https?://|urn:)[A-Za-z0-9.\-_:/#%?=&]{1,200}")

ENCOUNTER_STATUSES = frozenset({"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
                                "entered-in-error", "unknown"})
OBSERVATION_STATUSES = frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                  "entered-in-error", "unknown"})


class Purpose(StrEnum):
    CARE = "CARE"


class ConsentState(StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


class DataClass(StrEnum):
    CLINICAL_NOTES = "CLINICAL_NOTES"
    LAB_RESULTS = "LAB_RESULTS"
    MEDICATIONS = "MEDICATIONS"


#: The data classes an export needs (runbook 002 §3.2 "Required Data Classes for Export").
EXPORT_DATA_CLASSES = (DataClass.CLINICAL_NOTES, DataClass.LAB_RESULTS, DataClass.MEDICATIONS)


class Role(StrEnum):
    ADMIN = "ADMIN"
    CLINICIAN = "CLINICIAN"
    PATIENT = "PATIENT"
    RESEARCHER = "RESEARCHER"


class AuditEventType(StrEnum):
    FHIR_SYNC = "FHIR_SYNC"
    FHIR_SYNC_FAILED = "FHIR_SYNC_FAILED"
    FHIR_INGRESS = "FHIR_INGRESS"
    FHIR_EXPORT = "FHIR_EXPORT"
    FHIR_RECONCILIATION = "FHIR_RECONCILIATION"
    FHIR_AUDIT_MIRROR = "FHIR_AUDIT_MIRROR"


class RecordKind(StrEnum):
    ENCOUNTER = "encounter"
    OBSERVATION = "observation"

    @property
    def job_name(self) -> str:
        """The sync job's name (runbook 002 §2.2): `encounter-sync`, `observation-sync`."""
        return f"{self.value}-sync"

    @property
    def resource_type(self) -> str:
        return "Encounter" if self is RecordKind.ENCOUNTER else "Observation"

    @property
    def data_class(self) -> DataClass:
        """The consent data class a sync of this kind needs."""
        return DataClass.CLINICAL_NOTES if self is RecordKind.ENCOUNTER else DataClass.LAB_RESULTS

    @property
    def id_prefix(self) -> str:
        return "enc" if self is RecordKind.ENCOUNTER else "obs"

    @property
    def plural(self) -> str:
        return f"{self.value}s"


def iso(moment: datetime | None) -> str | None:
    """`2024-01-15T10:00:00.000Z`: the runbook's timestamp form (UTC, milliseconds)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_token(patient_token: str) -> str:
    if not PATIENT_TOKEN.fullmatch(patient_token):
        raise ValueError("a patient token is pt_ followed by 1-60 letters or digits")
    return patient_token


def _check(pattern: re.Pattern[str], value: str | None, what: str) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"{what} must match {pattern.pattern}")


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")


# --- consent -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Consent:
    patient_token: str
    org_id: str
    purpose: Purpose
    state: ConsentState
    data_classes: frozenset[DataClass]
    updated_at: datetime


ConsentStatus = Literal["granted", "denied", "missing"]


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """`granted`: an ACTIVE consent with the data class; `denied`: revoked, or without the data class;
    `missing`: no consent for this patient, organisation and purpose."""

    allowed: bool
    status: ConsentStatus
    reason: str  # "granted", "consent revoked", "data class LAB_RESULTS not consented", "no consent"


@dataclass(frozen=True, slots=True)
class ConsentTally:
    granted: int = 0
    denied: int = 0
    missing: int = 0

    def add(self, status: ConsentStatus) -> ConsentTally:
        return ConsentTally(granted=self.granted + (status == "granted"), denied=self.denied + (status == "denied"),
                            missing=self.missing + (status == "missing"))


@dataclass(frozen=True, slots=True)
class ConsentCounts:
    """Every consent check since the gate started: totals and per organisation (runbook 002 §8.3
    `holi_hipaa_consent_validations_total{status, org_id}`)."""

    granted: int
    denied: int
    missing: int
    by_org: Mapping[str, ConsentTally]


# --- local records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncounterDetails:
    """An encounter's clinical fields. `notes` is free text (it may hold PHI): kept locally, never synced."""

    status: str = "finished"
    class_code: str = "AMB"  # v3 ActCode: AMB, EMER, IMP, VR ...
    type_code: str | None = None  # e.g. OFFICE_VISIT
    reason_code: str | None = None  # ICD-10, e.g. Z00.00
    start: datetime | None = None
    end: datetime | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ENCOUNTER_STATUSES:
            raise ValueError(f"encounter status must be one of {sorted(ENCOUNTER_STATUSES)}")
        _check(CODE, self.class_code, "class_code")
        _check(CODE, self.type_code, "type_code")
        _check(CODE, self.reason_code, "reason_code")
        _aware(self.start, "start")
        _aware(self.end, "end")


@dataclass(frozen=True, slots=True)
class ObservationDetails:
    """An observation's clinical fields: a coded value. `notes` is free text: kept locally, never synced."""

    code: str
    status: str = "final"
    code_system: str = "http://loinc.org"
    value: float | None = None
    unit: str | None = None
    effective: datetime | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        if self.status not in OBSERVATION_STATUSES:
            raise ValueError(f"observation status must be one of {sorted(OBSERVATION_STATUSES)}")
        _check(CODE, self.code, "code")
        _check(SYSTEM, self.code_system, "code_system")
        _check(UNIT, self.unit, "unit")
        if self.value is not None and self.value != self.value:
            raise ValueError("value must be a number")
        _aware(self.effective, "effective")


RecordSource = Literal["app", "ingress"]


@dataclass(frozen=True, slots=True)
class EncounterRecord:
    kind: ClassVar[RecordKind] = RecordKind.ENCOUNTER
    id: str
    org_id: str
    patient_token: str
    details: EncounterDetails
    fhir_sync_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_synced_at: datetime | None = None
    fhir_resource_id: str | None = None
    fhir_version: str | None = None
    source: RecordSource = "app"


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    kind: ClassVar[RecordKind] = RecordKind.OBSERVATION
    id: str
    org_id: str
    patient_token: str
    details: ObservationDetails
    fhir_sync_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_synced_at: datetime | None = None
    fhir_resource_id: str | None = None
    fhir_version: str | None = None
    source: RecordSource = "app"


SyncRecord = EncounterRecord | ObservationRecord


@dataclass(frozen=True, slots=True)
class PatientToken:
    token: str
    org_id: str
    encrypted_payload_uri: str
    created_at: datetime
    fhir_synced_at: datetime | None = None  # when its de-identified Patient was last upserted to Medplum


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks (export): a user of an organisation in a role; `patient_token` is a PATIENT's own token."""

    user_id: str
    org_id: str
    role: Role
    patient_token: str | None = None


# --- reconciliation (runbook 002 §2.4, §6.3) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceReconciliation:
    total: int = 0
    not_synced: int = 0
    stale: int = 0
    enqueued: int = 0
    errors: int = 0

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "notSynced": self.not_synced, "stale": self.stale, "enqueued": self.enqueued,
                "errors": self.errors}


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    start_time: datetime
    end_time: datetime
    duration_ms: int
    encounters: ResourceReconciliation
    observations: ResourceReconciliation
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"startTime": iso(self.start_time), "endTime": iso(self.end_time), "durationMs": self.duration_ms,
                "encounters": self.encounters.to_json(), "observations": self.observations.to_json(),
                "errors": list(self.errors)}


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One row of the reconciliation history: the run's id, its scope (`org_id` None: every organisation)
    and its result."""

    id: int
    org_id: str | None
    stale_window_s: float
    batch_size: int
    result: ReconciliationResult

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "orgId": self.org_id, "staleWindowSeconds": self.stale_window_s,
                "batchSize": self.batch_size, **self.result.to_json()}


@dataclass(frozen=True, slots=True)
class ResourceSyncStats:
    """Sync-enabled records of one kind: `total` = `synced` + `not_synced` + `stale`."""

    total: int = 0
    synced: int = 0
    not_synced: int = 0
    stale: int = 0

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "synced": self.synced, "notSynced": self.not_synced, "stale": self.stale}


@dataclass(frozen=True, slots=True)
class SyncStats:
    """`GET /fhir/admin/reconciliation/stats` (runbook 002 §6.3)."""

    encounters: ResourceSyncStats
    observations: ResourceSyncStats

    def to_json(self) -> dict[str, object]:
        return {"encounters": self.encounters.to_json(), "observations": self.observations.to_json()}


# --- audit (runbook 002 §3.3, §6.2) ---------------------------------------------------------------------


Outcome = Literal["success", "failure", "denied"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event. Pseudonymous ids, org ids, correlation ids, counts and class names only."""

    id: int
    ts: datetime
    org_id: str
    event_type: AuditEventType
    correlation_id: str
    resource_type: str | None = None
    resource_id: str | None = None
    user_id: str | None = None
    user_role: str | None = None
    outcome: Outcome = "success"
    detail: str | None = None
    resource_count: int | None = None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"correlationId": self.correlation_id, "resourceType": self.resource_type,
                                      "resourceId": self.resource_id, "userId": self.user_id,
                                      "userRole": self.user_role, "outcome": self.outcome, "timestamp": iso(self.ts)}
        if self.detail is not None:
            payload["detail"] = self.detail
        if self.resource_count is not None:
            payload["resourceCount"] = self.resource_count
        return {"id": self.id, "ts": iso(self.ts), "orgId": self.org_id, "eventType": self.event_type.value,
                "payload": payload}


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One export, as `GET /fhir/export/exports` lists it (runbook 002 §6.2)."""

    timestamp: datetime
    correlation_id: str
    user_id: str | None
    patient_token: str | None
    resource_count: int

    def to_json(self) -> dict[str, object]:
        return {"timestamp": iso(self.timestamp), "correlationId": self.correlation_id, "userId": self.user_id,
                "patientTokenId": self.patient_token, "resourceCount": self.resource_count}


__all__ = [
    "CODE", "ENCOUNTER_STATUSES", "EXPORT_DATA_CLASSES", "OBSERVATION_STATUSES", "PATIENT_TOKEN", "SYSTEM", "UNIT",
    "AuditEventType", "AuditRecord", "BatchItem", "BatchResult", "Consent", "ConsentCounts", "ConsentDecision",
    "ConsentState", "ConsentStatus", "ConsentTally", "DataClass", "EncounterDetails", "EncounterRecord",
    "ExportRecord", "IngressResult", "ObservationDetails", "ObservationRecord", "Outcome", "PatientToken",
    "Purpose", "ReconciliationResult", "ReconciliationRun", "RecordKind", "RecordSource", "Requester",
    "ResourceReconciliation", "ResourceSyncStats", "Role", "SyncRecord", "SyncStats", "check_token", "iso",
]
