"""`Ingress`: FHIR Encounters and Observations from an external EHR into the local store (runbook 002
§1.3 "Inbound Ingress", §6.1 `/fhir/inbound/{observation,encounter,batch}`).

Per resource: the type must be Encounter or Observation (or the one the endpoint expects); the resource
must be valid R4 (`fhir.resources.R4B`); its `subject` must be `Patient/<token>` (the token `pt_...` or
its FHIR form `pt-...`) of a patient token known to the same organisation; its coded fields must be codes
(`models.CODE`, `UNIT`). Then it is stored with `fhir_sync_enabled` False (no sync job: no loop back to
Medplum), a `FHIR_INGRESS` audit is written, and the answer is the local record id. Any failure raises
`InvalidResource`, `UnknownPatientToken` or `WrongOrganisation` and writes nothing: no record, no job,
no audit row.

The external `id` is kept as the record's `external_id` but not validated as a FHIR id: the runbook's own
example (`obs_external_123`) is not one. Error details name field paths and error types, never values.
A batch (`Bundle` of type `batch`) is processed entry by entry: one bad entry fails alone (§6.1 shape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from integrations.clock import Clock
from integrations.sync.app_store import AppStore
from integrations.sync.audit import AuditTrail
from integrations.sync.deid import local_id
from integrations.sync.errors import InvalidResource, SyncError
from integrations.sync.models import (
    CODE,
    PATIENT_TOKEN,
    SYSTEM,
    UNIT,
    AuditEventType,
    BatchItem,
    BatchResult,
    EncounterDetails,
    IngressResult,
    ObservationDetails,
)

InboundType = Literal["Encounter", "Observation"]
MAX_BATCH = 1000


def _validate(resource_type: InboundType, resource: Mapping[str, object]) -> Any:
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.observation import Observation

    model = Encounter if resource_type == "Encounter" else Observation
    body = {k: v for k, v in resource.items() if k != "id"}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = sorted({f"{'.'.join(str(p) for p in e['loc']) or resource_type}: {e['type']}"
                           for e in exc.errors()})
        raise InvalidResource(f"invalid {resource_type}: " + "; ".join(problems[:5])) from None
    except (TypeError, ValueError) as exc:
        raise InvalidResource(f"invalid {resource_type}: {type(exc).__name__}") from None


def _code(value: object, path: str) -> str:
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise InvalidResource(f"{path}: must be a code")
    return value


def _moment(value: object, path: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise InvalidResource(f"{path}: a date-time of at least day precision is required")


def _first_coding(concept: Any, path: str) -> tuple[str | None, str]:
    codings = getattr(concept, "coding", None) or []
    for coding in codings:
        if coding.code is not None:
            return coding.system, _code(coding.code, f"{path}.coding.code")
    raise InvalidResource(f"{path}: a coding with a code is required")


class Ingress:
    def __init__(self, store: AppStore, audit: AuditTrail, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self._clock = clock

    def ingest(self, resource: Mapping[str, object], org_id: str, user_id: str, *,
               expected: InboundType | None = None) -> IngressResult:
        if not isinstance(resource, Mapping):
            raise InvalidResource("the body must be a FHIR resource (a JSON object)")
        resource_type = resource.get("resourceType")
        if resource_type not in ("Encounter", "Observation") or (expected is not None and resource_type != expected):
            wanted = expected or "Encounter or Observation"
            raise InvalidResource(f"resourceType must be {wanted}")
        kind: InboundType = "Encounter" if resource_type == "Encounter" else "Observation"
        model = _validate(kind, resource)
        token = self._patient(model, org_id)
        raw_id = resource.get("id")
        external_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 64 else None
        if kind == "Encounter":
            record_id = self.store.ingest_encounter(org_id, token, _encounter(model), external_id=external_id).id
        else:
            record_id = self.store.ingest_observation(org_id, token, _observation(model), external_id=external_id).id
        self.audit.record(AuditEventType.FHIR_INGRESS, org_id, f"ingress-{record_id}", resource_type=kind,
                          resource_id=record_id, user_id=user_id)
        return IngressResult(resource_type=kind, id=record_id)

    def ingest_batch(self, bundle: Mapping[str, object], org_id: str, user_id: str) -> BatchResult:
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            raise InvalidResource("resourceType must be Bundle")
        if bundle.get("type") not in ("batch", "transaction", "collection"):
            raise InvalidResource("Bundle.type must be batch")
        entries = bundle.get("entry", [])
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise InvalidResource("Bundle.entry must be a list")
        if len(entries) > MAX_BATCH:
            raise InvalidResource(f"Bundle.entry: at most {MAX_BATCH} entries")
        results: list[BatchItem] = []
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            rtype = resource.get("resourceType") if isinstance(resource, Mapping) else None
            name = rtype if isinstance(rtype, str) and len(rtype) <= 64 else None
            try:
                if not isinstance(resource, Mapping):
                    raise InvalidResource("Bundle.entry.resource is required")
                done = self.ingest(resource, org_id, user_id)
            except SyncError as exc:
                results.append(BatchItem(success=False, resource_type=name, error=type(exc).__name__,
                                         detail=exc.detail))
            else:
                results.append(BatchItem(success=True, resource_type=done.resource_type, id=done.id))
        succeeded = sum(1 for r in results if r.success)
        return BatchResult(total=len(results), succeeded=succeeded, failed=len(results) - succeeded,
                           results=tuple(results))

    def _patient(self, model: Any, org_id: str) -> str:
        subject = getattr(model, "subject", None)
        reference = getattr(subject, "reference", None)
        if not isinstance(reference, str) or not reference.startswith("Patient/"):
            raise InvalidResource("subject.reference must be Patient/<patient token>")
        rid = reference.removeprefix("Patient/")
        token = rid if rid.startswith("pt_") else local_id(rid)
        if not PATIENT_TOKEN.fullmatch(token):  # not a token at all: the reference is not echoed (it may be PHI)
            raise InvalidResource("subject.reference must be Patient/<patient token>")
        self.store.require_patient(token, org_id)
        return token


def _encounter(model: Any) -> EncounterDetails:
    klass = model.class_fhir
    class_code = _code(getattr(klass, "code", None), "class.code")
    type_code = _first_coding(model.type[0], "type[0]")[1] if model.type else None
    reason_code = _first_coding(model.reasonCode[0], "reasonCode[0]")[1] if model.reasonCode else None
    period = model.period
    try:
        return EncounterDetails(status=str(model.status), class_code=class_code, type_code=type_code,
                                reason_code=reason_code,
                                start=_moment(getattr(period, "start", None), "period.start"),
                                end=_moment(getattr(period, "end", None), "period.end"))
    except ValueError as exc:
        raise InvalidResource(f"Encounter: {exc}") from None


def _observation(model: Any) -> ObservationDetails:
    system, code = _first_coding(model.code, "code")
    if system is not None and not SYSTEM.fullmatch(system):
        raise InvalidResource("code.coding.system: must be a URI")
    value: float | None = None
    unit: str | None = None
    quantity = model.valueQuantity
    if quantity is not None:
        value = None if quantity.value is None else float(quantity.value)
        for candidate in (quantity.code, quantity.unit):
            if isinstance(candidate, str) and UNIT.fullmatch(candidate):
                unit = candidate
                break
        else:
            if quantity.code is not None or quantity.unit is not None:
                raise InvalidResource("valueQuantity.unit: must be a unit code")
    notes = [n.text for n in (model.note or []) if getattr(n, "text", None)]
    try:
        return ObservationDetails(code=code, status=str(model.status), code_system=system or "http://loinc.org",
                                  value=value, unit=unit,
                                  effective=_moment(model.effectiveDateTime, "effectiveDateTime"),
                                  notes="\n".join(notes) or None)
    except ValueError as exc:
        raise InvalidResource(f"Observation: {exc}") from None
