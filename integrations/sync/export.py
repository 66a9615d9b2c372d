"""`Exporter`: a patient's FHIR Bundle for a requester (runbook 002 §1.3 "Export", §6.2
`GET /fhir/export/patient/:patientTokenId/$everything`).

In order, each refusal raising before anything is fetched or written:

1. RBAC (§6.2): RESEARCHER is always refused (`ExportForbidden`: "use de-identified bulk export"); the
   patient token must be known (`UnknownPatientToken`) and of the requester's organisation (else
   `ExportForbidden`, whatever the role); PATIENT only for their own token; CLINICIAN only for a patient
   with an encounter in the organisation; ADMIN any patient of the organisation.
2. Consent (§3.2): an ACTIVE CARE consent with CLINICAL_NOTES, LAB_RESULTS and MEDICATIONS, checked (and
   counted) now: `ConsentDenied` otherwise.
3. The patient's compartment from Medplum: the de-identified Patient, and the Encounters and Observations
   whose `patient` is it (`Patient/{id}/$everything` restricted to the types the sync writes; the
   connector has no operation call, so it is read as a Patient read plus two paged searches, which is
   what `$everything` returns for these types).
4. Filters: `types` (resource types kept besides the Patient), `start` / `end` (inclusive, on
   `period.start`, `effectiveDateTime`, else `meta.lastUpdated`).
5. A `FHIR_EXPORT` audit (user id, role, patient token, resource count, correlation id); `recent_exports`
   lists them (§6.2 `GET /fhir/export/exports`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from integrations.clock import Clock
from integrations.fhir import FhirConnector
from integrations.fhir.models import FhirResource, JsonObject, JsonValue
from integrations.sync.app_store import AppStore
from integrations.sync.audit import AuditTrail
from integrations.sync.consent import ConsentGate
from integrations.sync.database import to_ms
from integrations.sync.deid import patient_fhir_id, patient_reference
from integrations.sync.errors import ExportForbidden, UnknownPatientToken
from integrations.sync.models import EXPORT_DATA_CLASSES, AuditEventType, ExportRecord, Requester, Role

COMPARTMENT_TYPES = ("Encounter", "Observation")


def _when(resource: JsonObject) -> datetime | None:
    value: JsonValue = None
    period = resource.get("period")
    if isinstance(period, dict):
        value = period.get("start")
    if value is None:
        value = resource.get("effectiveDateTime")
    if value is None:
        meta = resource.get("meta")
        value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Exporter:
    def __init__(self, store: AppStore, gate: ConsentGate, audit: AuditTrail, connector: FhirConnector,
                 clock: Clock) -> None:
        self.store = store
        self.gate = gate
        self.audit = audit
        self.connector = connector
        self._clock = clock
        self._sequence = itertools.count(1)

    def authorize(self, patient_token: str, requester: Requester) -> None:
        """The RBAC rules of §6.2 (`ExportForbidden`, `UnknownPatientToken`); writes nothing."""
        if requester.role is Role.RESEARCHER:
            raise ExportForbidden("RESEARCHER may not export identified records; use the de-identified bulk export")
        token = self.store.patient_token(patient_token)
        if token is None:
            raise UnknownPatientToken(patient_token)
        if token.org_id != requester.org_id:
            raise ExportForbidden("the patient is not in the requester's organisation")
        if requester.role is Role.PATIENT and requester.patient_token != patient_token:
            raise ExportForbidden("a patient may export only their own records")
        if requester.role is Role.CLINICIAN and not self.store.has_encounter(patient_token, requester.org_id):
            raise ExportForbidden("the clinician's organisation has no encounter with this patient")

    async def export_everything(self, patient_token: str, requester: Requester, start: datetime | None = None,
                                end: datetime | None = None, types: Sequence[str] | None = None) -> JsonObject:
        self.authorize(patient_token, requester)
        self.gate.require(patient_token, requester.org_id, EXPORT_DATA_CLASSES)
        wanted = COMPARTMENT_TYPES if types is None else tuple(t for t in COMPARTMENT_TYPES if t in set(types))
        found: list[FhirResource] = [await self.connector.read("Patient", patient_fhir_id(patient_token))]
        for resource_type in wanted:
            results = await self.connector.search_all(resource_type, {"patient": patient_reference(patient_token)})
            found.extend(results.resources)
        kept: list[JsonObject] = []
        for resource in found:
            if resource.resource_type != "Patient" and (start is not None or end is not None):
                moment = _when(resource.body)
                if moment is None or (start is not None and moment < start) or (end is not None and moment > end):
                    continue
            kept.append(resource.body)
        now = self._clock.now()
        correlation_id = f"export-{to_ms(now)}-{next(self._sequence)}"
        self.audit.record(AuditEventType.FHIR_EXPORT, requester.org_id, correlation_id, resource_type="Patient",
                          resource_id=patient_token, user_id=requester.user_id, user_role=requester.role.value,
                          resource_count=len(kept))
        entries: list[JsonValue] = [{"resource": body} for body in kept]
        return {"resourceType": "Bundle", "type": "searchset", "total": len(kept), "entry": entries}

    def recent_exports(self, limit: int = 10, org_id: str | None = None) -> list[ExportRecord]:
        return self.audit.recent_exports(limit, org_id)
