"""Compact JSON Schemas of the R4 resources the simulators serve, for their OpenAPI documents.

Not all of FHIR: per type, `resourceType` (const), `id` (the FHIR id pattern) and the main fields, with the
elements `fhir.resources.R4B` requires (`simulators.fhir.validation` validates every write with it), each
narrowed to values that model accepts (codes from the required value sets, dates as FHIR dates, strings
without leading or trailing blanks). A body generated from one of these is a valid resource, so a fuzzer
reaches the store; a body that breaks one is answered 400 by the validator, as FHIR says. The R4B models'
own `model_json_schema()` is not used: with every datatype and extension spelled out it is megabytes per
document and slow to generate from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonSchema = dict[str, Any]

__all__ = ["BUNDLE_SCHEMA", "JSON_PATCH_SCHEMA", "OPERATION_OUTCOME_SCHEMA", "RESOURCE_SCHEMA", "bundle_schema",
           "resource_schema"]

_TEXT: JsonSchema = {"type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9 ]{0,18}[A-Za-z0-9])?$"}
_CODE: JsonSchema = {"type": "string", "pattern": "^[A-Za-z0-9-]{1,16}$"}
_URI: JsonSchema = {"type": "string", "pattern": "^http://example\\.org/[a-z]{1,10}$"}
_DAY = "(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_DATE: JsonSchema = {"type": "string", "pattern": f"^(19[5-9][0-9]|20[0-2][0-9])-{_DAY}$"}
_INSTANT: JsonSchema = {"type": "string", "pattern": f"^20[0-2][0-9]-{_DAY}T1[0-9]:[0-5][0-9]:00Z$"}
_ID: JsonSchema = {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
_CODING: JsonSchema = {"type": "object", "additionalProperties": False,
                       "properties": {"system": _URI, "code": _CODE, "display": _TEXT}}
_CONCEPT: JsonSchema = {"type": "object", "additionalProperties": False,
                        "properties": {"coding": {"type": "array", "maxItems": 2, "items": _CODING}, "text": _TEXT}}
_REFERENCE: JsonSchema = {"type": "object", "additionalProperties": False,
                          "properties": {"reference": {"type": "string", "pattern": "^(Patient|Practitioner|"
                                                       "Organization|Encounter)/[A-Za-z0-9-]{1,36}$"},
                                         "display": _TEXT}}
_IDENTIFIER: JsonSchema = {"type": "object", "additionalProperties": False,
                           "properties": {"system": _URI, "value": _TEXT}}
_PERIOD: JsonSchema = {"type": "object", "additionalProperties": False, "properties": {"start": _DATE, "end": _DATE}}
_QUANTITY: JsonSchema = {"type": "object", "additionalProperties": False,
                         "properties": {"value": {"type": "number", "minimum": -1e6, "maximum": 1e6},
                                        "unit": _TEXT, "system": _URI, "code": _CODE}}
_NAME: JsonSchema = {"type": "object", "additionalProperties": False,
                     "properties": {"family": _TEXT, "given": {"type": "array", "maxItems": 2, "items": _TEXT},
                                    "use": {"enum": ["usual", "official", "temp", "nickname", "old", "maiden"]}}}


def _enum(*values: str) -> JsonSchema:
    return {"enum": list(values)}


def _list(item: JsonSchema) -> JsonSchema:
    return {"type": "array", "minItems": 1, "maxItems": 2, "items": item}


#: type -> (main fields, the ones R4B requires)
_FIELDS: dict[str, tuple[dict[str, JsonSchema], tuple[str, ...]]] = {
    "Patient": ({"active": {"type": "boolean"}, "identifier": _list(_IDENTIFIER), "name": _list(_NAME),
                 "gender": _enum("male", "female", "other", "unknown"), "birthDate": _DATE}, ()),
    "Practitioner": ({"active": {"type": "boolean"}, "identifier": _list(_IDENTIFIER), "name": _list(_NAME)}, ()),
    "Organization": ({"active": {"type": "boolean"}, "identifier": _list(_IDENTIFIER), "name": _TEXT}, ()),
    "Location": ({"status": _enum("active", "suspended", "inactive"), "name": _TEXT}, ()),
    "Medication": ({"code": _CONCEPT, "status": _enum("active", "inactive", "entered-in-error")}, ()),
    "Observation": ({"status": _enum("registered", "preliminary", "final", "amended", "cancelled"),
                     "code": _CONCEPT, "subject": _REFERENCE, "effectiveDateTime": _DATE,
                     "valueQuantity": _QUANTITY}, ("status", "code")),
    "Encounter": ({"status": _enum("planned", "arrived", "in-progress", "finished", "cancelled"), "class": _CODING,
                   "subject": _REFERENCE, "period": _PERIOD}, ("status", "class")),
    "Condition": ({"subject": _REFERENCE, "code": _CONCEPT, "onsetDateTime": _DATE, "recordedDate": _DATE},
                  ("subject",)),
    "AllergyIntolerance": ({"patient": _REFERENCE, "code": _CONCEPT,
                            "criticality": _enum("low", "high", "unable-to-assess")}, ("patient",)),
    "Procedure": ({"status": _enum("preparation", "in-progress", "completed", "stopped", "unknown"),
                   "subject": _REFERENCE, "code": _CONCEPT, "performedDateTime": _DATE}, ("status", "subject")),
    "Immunization": ({"status": _enum("completed", "entered-in-error", "not-done"), "vaccineCode": _CONCEPT,
                      "patient": _REFERENCE, "occurrenceDateTime": _DATE},
                     ("status", "vaccineCode", "patient", "occurrenceDateTime")),
    "MedicationRequest": ({"status": _enum("active", "on-hold", "cancelled", "completed", "stopped", "draft"),
                           "intent": _enum("proposal", "plan", "order", "original-order"), "subject": _REFERENCE,
                           "medicationCodeableConcept": _CONCEPT, "authoredOn": _DATE},
                          ("status", "intent", "subject", "medicationCodeableConcept")),
    "DiagnosticReport": ({"status": _enum("registered", "partial", "preliminary", "final"), "code": _CONCEPT,
                          "subject": _REFERENCE, "effectiveDateTime": _DATE}, ("status", "code")),
    "DocumentReference": ({"status": _enum("current", "superseded", "entered-in-error"), "subject": _REFERENCE,
                           "content": _list({"type": "object", "additionalProperties": False,
                                             "required": ["attachment"],
                                             "properties": {"attachment": {
                                                 "type": "object", "additionalProperties": False,
                                                 "properties": {"contentType": _enum("text/plain", "application/pdf"),
                                                                "url": _URI, "title": _TEXT}}}})},
                          ("status", "content")),
    "Group": ({"type": _enum("person", "animal", "practitioner", "device", "medication", "substance"),
               "actual": {"type": "boolean"}, "name": _TEXT}, ("type", "actual")),
    "AuditEvent": ({"type": _CODING, "recorded": _INSTANT,
                    "agent": _list({"type": "object", "additionalProperties": False, "required": ["requestor"],
                                    "properties": {"requestor": {"type": "boolean"}, "who": _REFERENCE}}),
                    "source": {"type": "object", "additionalProperties": False, "required": ["observer"],
                               "properties": {"observer": _REFERENCE, "site": _TEXT}}},
                   ("type", "recorded", "agent", "source")),
    "Provenance": ({"target": _list(_REFERENCE), "recorded": _INSTANT,
                    "agent": _list({"type": "object", "additionalProperties": False, "required": ["who"],
                                    "properties": {"who": _REFERENCE}})}, ("target", "recorded", "agent")),
}

#: Any resource, as a FHIR server answers one (or a resource of a type not listed above).
RESOURCE_SCHEMA: JsonSchema = {"type": "object", "required": ["resourceType"],
                               "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}}}

OPERATION_OUTCOME_SCHEMA: JsonSchema = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "id": {"type": "string"},
                   "issue": {"type": "array", "minItems": 1, "items": {
                       "type": "object", "required": ["severity", "code"],
                       "properties": {"severity": _enum("fatal", "error", "warning", "information"),
                                      "code": {"type": "string"}}}}}}

JSON_PATCH_SCHEMA: JsonSchema = {
    "type": "array", "maxItems": 3, "items": {
        "type": "object", "required": ["op", "path"], "additionalProperties": False,
        "properties": {"op": _enum("add", "remove", "replace", "test", "move", "copy"),
                       "path": {"type": "string", "pattern": "^(/[A-Za-z0-9]{1,12}){1,2}$"},
                       "from": {"type": "string", "pattern": "^(/[A-Za-z0-9]{1,12}){1,2}$"},
                       "value": {}}}}


def resource_schema(resource_type: str) -> JsonSchema:
    """The request-body schema of one resource type (a type not listed: its `resourceType` and `id`)."""
    fields, required = _FIELDS.get(resource_type, ({}, ()))
    return {"type": "object", "additionalProperties": False, "required": ["resourceType", *required],
            "properties": {"resourceType": {"const": resource_type}, "id": _ID, **fields}}


def _entry(resource_types: tuple[str, ...], resource: Callable[[str], JsonSchema]) -> JsonSchema:
    return {"type": "object", "additionalProperties": False, "required": ["request"],
            "properties": {"fullUrl": {"type": "string", "pattern": "^urn:uuid:[0-9a-f]{8}$"},
                           "resource": {"oneOf": [resource(t) for t in resource_types]},
                           "request": {"type": "object", "additionalProperties": False, "required": ["method", "url"],
                                       "properties": {"method": _enum("GET", "POST", "PUT", "DELETE"),
                                                      "url": {"type": "string",
                                                              "pattern": f"^({'|'.join(resource_types)})"
                                                                         "(/[A-Za-z0-9-]{1,8})?$"}}}}}


def bundle_schema(resource_types: tuple[str, ...],
                  resource: Callable[[str], JsonSchema] = resource_schema) -> JsonSchema:
    """A batch or transaction Bundle of up to three entries of `resource_types` (each type's schema given by
    `resource`: a `$ref` in a document)."""
    return {"type": "object", "additionalProperties": False, "required": ["resourceType", "type"],
            "properties": {"resourceType": {"const": "Bundle"}, "type": _enum("batch", "transaction"),
                           "entry": {"type": "array", "maxItems": 3, "items": _entry(resource_types, resource)}}}


BUNDLE_SCHEMA = bundle_schema(("Patient", "Observation"))
