"""The de-identified FHIR mapping (runbook 002 §3.1): what leaves for Medplum.

- Patient: only the pseudonymous id and identifier, a masked name (`Patient [ABC]`, family and given
  `***`), no telecom, no address, no birth date, and the encrypted-payload extension pointing at the
  encrypted clinical data. The token is the identifier's value as is (`pt_abc123`); the resource id is
  its FHIR form `pt-abc123`, because a FHIR id may not contain `_` (R4 `id`: `[A-Za-z0-9\\-.]{1,64}`;
  Medplum and `fhir.resources` refuse `pt_abc123`). `PATIENT_TOKEN` makes the mapping one-to-one.
- Encounter and Observation: coded fields only (status, class, type, reason, code, value and unit,
  times), the subject `Patient/pt-...`, the local record id as identifier, the organisation as an
  extension. A record's `notes` (free text, possibly PHI) are never mapped.

The runbook's example has `"telecom": []`, `"address": []` and `"birthDate": null`; FHIR JSON forbids
empty arrays and nulls (R4 §2.6.2 "JSON": "arrays SHALL NOT be empty", "null SHALL NOT be used"), so
they are left out, which is what the example means. `phi_violations` says what a Patient carries that it
must not; the sync worker refuses to send one that has any.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.fhir.models import JsonObject, JsonValue
from integrations.sync.models import (
    PATIENT_TOKEN,
    EncounterRecord,
    ObservationRecord,
    SyncRecord,
    check_token,
    iso,
)

PATIENT_TOKEN_SYSTEM = "https://holilabs.xyz/patient-token"
ENCRYPTED_PAYLOAD_URL = "https://holilabs.xyz/fhir/encrypted-payload"
ORG_EXTENSION_URL = "https://holilabs.xyz/fhir/org-id"
ENCOUNTER_ID_SYSTEM = "https://holilabs.xyz/encounter"
OBSERVATION_ID_SYSTEM = "https://holilabs.xyz/observation"
ENCOUNTER_TYPE_SYSTEM = "https://holilabs.xyz/encounter-type"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
UCUM_SYSTEM = "http://unitsofmeasure.org"
MASK = "***"

#: Patient elements that are PHI: never present (beyond the masked name) on a Patient sent to Medplum.
PHI_ELEMENTS = ("telecom", "address", "birthDate", "photo", "contact", "deceasedDateTime", "multipleBirthInteger",
                "text", "communication", "generalPractitioner", "link", "maritalStatus")


def fhir_id(local_id: str) -> str:
    """A local id (`pt_abc123`, `enc_0000000001`) as a FHIR id (`pt-abc123`, `enc-0000000001`)."""
    return local_id.replace("_", "-")


def local_id(resource_id: str) -> str:
    """The inverse of `fhir_id` for ids of the form `<prefix>-<rest>` (`pt-abc123` -> `pt_abc123`)."""
    prefix, sep, rest = resource_id.partition("-")
    return f"{prefix}_{rest}" if sep else resource_id


def patient_fhir_id(patient_token: str) -> str:
    return fhir_id(check_token(patient_token))


def patient_reference(patient_token: str) -> str:
    return f"Patient/{patient_fhir_id(patient_token)}"


def masked_name(patient_token: str) -> str:
    """`Patient [ABC]`: the first three characters of the token after `pt_`, upper-cased."""
    return f"Patient [{check_token(patient_token)[3:6].upper()}]"


def patient_resource(patient_token: str, encrypted_payload_uri: str) -> JsonObject:
    return {
        "resourceType": "Patient",
        "id": patient_fhir_id(patient_token),
        "identifier": [{"system": PATIENT_TOKEN_SYSTEM, "value": patient_token}],
        "name": [{"text": masked_name(patient_token), "family": MASK, "given": [MASK]}],
        "extension": [{"url": ENCRYPTED_PAYLOAD_URL, "valueReference": {"reference": encrypted_payload_uri}}],
    }


def _org(org_id: str) -> list[JsonValue]:
    return [{"url": ORG_EXTENSION_URL, "valueString": org_id}]


def encounter_resource(record: EncounterRecord) -> JsonObject:
    d = record.details
    resource: JsonObject = {
        "resourceType": "Encounter",
        "id": fhir_id(record.id),
        "extension": _org(record.org_id),
        "identifier": [{"system": ENCOUNTER_ID_SYSTEM, "value": record.id}],
        "status": d.status,
        "class": {"system": ACT_CODE_SYSTEM, "code": d.class_code},
        "subject": {"reference": patient_reference(record.patient_token)},
    }
    if d.type_code is not None:
        resource["type"] = [{"coding": [{"system": ENCOUNTER_TYPE_SYSTEM, "code": d.type_code}]}]
    if d.reason_code is not None:
        resource["reasonCode"] = [{"coding": [{"system": ICD10_SYSTEM, "code": d.reason_code}]}]
    period: JsonObject = {}
    if d.start is not None:
        period["start"] = iso(d.start)
    if d.end is not None:
        period["end"] = iso(d.end)
    if period:
        resource["period"] = period
    return resource


def observation_resource(record: ObservationRecord) -> JsonObject:
    d = record.details
    resource: JsonObject = {
        "resourceType": "Observation",
        "id": fhir_id(record.id),
        "extension": _org(record.org_id),
        "identifier": [{"system": OBSERVATION_ID_SYSTEM, "value": record.id}],
        "status": d.status,
        "code": {"coding": [{"system": d.code_system, "code": d.code}]},
        "subject": {"reference": patient_reference(record.patient_token)},
    }
    if d.effective is not None:
        resource["effectiveDateTime"] = iso(d.effective)
    if d.value is not None:
        quantity: JsonObject = {"value": d.value}
        if d.unit is not None:
            quantity.update(unit=d.unit, system=UCUM_SYSTEM, code=d.unit)
        resource["valueQuantity"] = quantity
    return resource


def record_resource(record: SyncRecord) -> JsonObject:
    if isinstance(record, EncounterRecord):
        return encounter_resource(record)
    return observation_resource(record)


def phi_violations(patient: Mapping[str, object]) -> list[str]:
    """What a Patient resource carries that a de-identified one must not (element names, never values)."""
    found = [element for element in PHI_ELEMENTS if element in patient]
    identifier = patient.get("identifier")
    token = None
    if isinstance(identifier, list) and len(identifier) == 1 and isinstance(identifier[0], dict):
        token = identifier[0].get("value")
    if not isinstance(token, str) or not PATIENT_TOKEN.fullmatch(token):
        found.append("identifier")
        token = None
    names = patient.get("name")
    if names is not None:
        expected = None if token is None else [{"text": masked_name(token), "family": MASK, "given": [MASK]}]
        if names != expected:
            found.append("name")
    return found
