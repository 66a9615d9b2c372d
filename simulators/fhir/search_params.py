"""The search parameters the FHIR core understands, per resource type (`search_params`).

Every type: `_id`, `_lastUpdated`, and `identifier` where the type has identifiers. Clinical types:
`patient` (a reference to a Patient), `subject`, `encounter`, `code`, `status`, `category` and `date`
(the type's clinical date: Observation.effective[x], Encounter.period, ...). Type-specific ones: Patient
`name`, `family`, `given`, `birthdate`, `gender`, `active`; Condition `clinical-status`, `recorded-date`,
`onset-date`; MedicationRequest `authoredon`, `intent`; AuditEvent `agent`, `entity`, `type`, `action`,
`outcome`; Group `member`. A parameter is a kind (token, reference, date, string) and the dotted paths
(choice types spelled out) whose values it matches; `patient` parameters also drive compartments
(`$everything`, Patient and Group `$export`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["token", "reference", "date", "string"]


@dataclass(frozen=True, slots=True)
class Param:
    kind: Kind
    paths: tuple[str, ...]
    target: str | None = None  # references: the only type they may point to


def _p(kind: Kind, *paths: str, target: str | None = None) -> Param:
    return Param(kind, paths, target)


_CLINICAL_DATES = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "period", "occurrenceDateTime",
                   "performedDateTime", "performedPeriod", "recordedDate", "authoredOn", "recorded", "date")
_GENERIC: dict[str, Param] = {
    "identifier": _p("token", "identifier"),
    "patient": _p("reference", "subject", "patient", target="Patient"),
    "subject": _p("reference", "subject"),
    "encounter": _p("reference", "encounter", "context"),
    "code": _p("token", "code", "medicationCodeableConcept", "vaccineCode"),
    "status": _p("token", "status"),
    "category": _p("token", "category"),
    "date": _p("date", *_CLINICAL_DATES),
}
_NON_CLINICAL = frozenset({"Patient", "Practitioner", "Organization", "Location", "Medication", "Group",
                           "AuditEvent", "Provenance"})
_SPECIFIC: dict[str, dict[str, Param]] = {
    "Patient": {
        "identifier": _p("token", "identifier"), "name": _p("string", "name"), "family": _p("string", "name.family"),
        "given": _p("string", "name.given"), "birthdate": _p("date", "birthDate"), "gender": _p("token", "gender"),
        "active": _p("token", "active"),
    },
    "Practitioner": {"identifier": _p("token", "identifier"), "name": _p("string", "name"),
                     "family": _p("string", "name.family")},
    "Organization": {"identifier": _p("token", "identifier"), "name": _p("string", "name")},
    "Group": {"identifier": _p("token", "identifier"), "member": _p("reference", "member.entity")},
    "Observation": {"date": _p("date", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")},
    "Encounter": {"date": _p("date", "period"), "class": _p("token", "class"), "type": _p("token", "type")},
    "Condition": {"clinical-status": _p("token", "clinicalStatus"), "recorded-date": _p("date", "recordedDate"),
                  "onset-date": _p("date", "onsetDateTime", "onsetPeriod")},
    "MedicationRequest": {"authoredon": _p("date", "authoredOn"), "intent": _p("token", "intent"),
                          "date": _p("date", "authoredOn")},
    "AuditEvent": {"date": _p("date", "recorded"), "agent": _p("reference", "agent.who"),
                   "entity": _p("reference", "entity.what"), "type": _p("token", "type"),
                   "action": _p("token", "action"), "outcome": _p("token", "outcome"),
                   "patient": _p("reference", "entity.what", target="Patient")},
}


def search_params(resource_type: str) -> dict[str, Param]:
    """The search parameters of a type, by name (for the CapabilityStatement too)."""
    params: dict[str, Param] = {"_id": _p("token", "id"), "_lastUpdated": _p("date", "meta.lastUpdated")}
    if resource_type not in _NON_CLINICAL:
        params.update(_GENERIC)
    params.update(_SPECIFIC.get(resource_type, {}))
    return params
