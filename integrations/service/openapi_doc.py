"""The service's `/openapi.json` as the service really behaves: request bodies and error answers.

The routes read their bodies themselves (`bodies.read_body`, `bodies.read_object`: any Content-Type, the
runbook's own curl commands send JSON as a form), so FastAPI documents none; and every error goes through
`errors.install_error_handlers`, whose body is `{"success": false, "error": CODE, "detail": MESSAGE}`,
not FastAPI's `422 HTTPValidationError`. Declared here:

- `body(Model, required=...)`: a route's `openapi_extra` with its pydantic body model's JSON schema
  (by alias, as the body is read; nested models inlined);
- `INGRESS_*`: the ingress payloads, compact R4 schemas of what `integrations.sync.ingress` accepts (an
  Observation or Encounter whose `subject` is `Patient/<patient token>`, and a batch Bundle of them);
- `document_service(app)`: every operation's errors (`default`) are `ErrorBody`, and `/metrics` answers
  in the Prometheus text format.

The handlers are untouched: this documents them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel

from integrations.service.metrics import METRICS_CONTENT_TYPE
from integrations.sync.models import CODE, PATIENT_TOKEN

__all__ = ["INGRESS_BUNDLE", "INGRESS_ENCOUNTER", "INGRESS_OBSERVATION", "ErrorBody", "body", "document_service",
           "schema_body"]

JsonObject = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "patch")


class ErrorBody(BaseModel):
    """Every error answer of the service (`errors.error_response`)."""

    success: Literal[False]
    error: str
    detail: str


def _inline(schema: JsonObject) -> JsonObject:
    """`schema` with its `$defs` references replaced by the definitions (the body models do not recurse)."""
    defs: JsonObject = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: JsonObject = walk(schema)
    return result


def schema_body(schema: JsonObject, *, required: bool = True) -> JsonObject:
    """`openapi_extra` declaring a JSON request body of `schema`."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def body(model: type[BaseModel], *, required: bool = True) -> JsonObject:
    """`openapi_extra` declaring `model` as the route's JSON request body (absent: the model's defaults)."""
    return schema_body(_inline(model.model_json_schema(by_alias=True)), required=required)


_TEXT: JsonObject = {"type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9 ]{0,18}[A-Za-z0-9])?$"}
_CODE: JsonObject = {"type": "string", "pattern": f"^{CODE.pattern}$", "maxLength": 20}
_DATE: JsonObject = {"type": "string", "pattern": "^20[0-2][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"}
_CODING: JsonObject = {"type": "object", "additionalProperties": False, "required": ["code"],
                       "properties": {"system": {"enum": ["http://loinc.org", "http://snomed.info/sct"]},
                                      "code": _CODE, "display": _TEXT}}
_CONCEPT: JsonObject = {"type": "object", "additionalProperties": False, "required": ["coding"],
                        "properties": {"coding": {"type": "array", "minItems": 1, "maxItems": 1, "items": _CODING},
                                       "text": _TEXT}}
_SUBJECT: JsonObject = {"type": "object", "additionalProperties": False, "required": ["reference"],
                        "properties": {"reference": {"type": "string", "maxLength": 72,
                                                     "pattern": f"^Patient/{PATIENT_TOKEN.pattern}$"}}}
INGRESS_OBSERVATION: JsonObject = {
    "type": "object", "additionalProperties": False, "required": ["resourceType", "status", "code", "subject"],
    "properties": {"resourceType": {"const": "Observation"}, "id": {"type": "string", "maxLength": 64},
                   "status": {"enum": ["registered", "preliminary", "final", "amended"]}, "code": _CONCEPT,
                   "subject": _SUBJECT, "effectiveDateTime": _DATE,
                   "valueQuantity": {"type": "object", "additionalProperties": False,
                                     "properties": {"value": {"type": "number", "minimum": -1e6, "maximum": 1e6},
                                                    "unit": {"enum": ["Cel", "mm[Hg]", "kg", "%"]}}}}}
INGRESS_ENCOUNTER: JsonObject = {
    "type": "object", "additionalProperties": False, "required": ["resourceType", "status", "class", "subject"],
    "properties": {"resourceType": {"const": "Encounter"}, "id": {"type": "string", "maxLength": 64},
                   "status": {"enum": ["planned", "arrived", "in-progress", "finished", "cancelled"]},
                   "class": {"type": "object", "additionalProperties": False, "required": ["code"],
                             "properties": {"system": {"const": "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
                                            "code": {"enum": ["AMB", "EMER", "IMP"]}}},
                   "subject": _SUBJECT,
                   "period": {"type": "object", "additionalProperties": False,
                              "properties": {"start": _DATE, "end": _DATE}}}}
INGRESS_BUNDLE: JsonObject = {
    "type": "object", "additionalProperties": False, "required": ["resourceType", "type"],
    "properties": {"resourceType": {"const": "Bundle"}, "type": {"enum": ["batch", "transaction", "collection"]},
                   "entry": {"type": "array", "maxItems": 3, "items": {
                       "type": "object", "additionalProperties": False, "required": ["resource"],
                       "properties": {"resource": {"oneOf": [INGRESS_OBSERVATION, INGRESS_ENCOUNTER]}}}}}}


def _document(doc: JsonObject) -> None:
    error = _inline(ErrorBody.model_json_schema())
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["default"] = {"description": "An error: `{success: false, error, detail}`",
                                    "content": {"application/json": {"schema": error}}}
            if path == "/metrics" and "200" in responses:
                responses["200"]["content"] = {METRICS_CONTENT_TYPE.split(";", 1)[0]: {"schema": {"type": "string"}}}


def document_service(app: FastAPI) -> None:
    """Make `app.openapi()` declare the service's error body and media types (module docstring)."""
    generate = app.openapi

    def openapi() -> JsonObject:
        if app.openapi_schema is None:
            app.openapi_schema = generate()
            _document(app.openapi_schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
