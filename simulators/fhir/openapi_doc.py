"""The FHIR part of a simulator's `/openapi.json`: request bodies and answers as the core really has them.

The FHIR endpoints (`simulators.fhir.api`) read their bodies themselves (`read_resource_body`: one route
serves every resource type), so FastAPI documents none and a client generated from the document sends
writes without a body. `document_fhir(api, personality, prefixes)` post-processes the app's generated
document (FastAPI's documented way: replacing `app.openapi`), under each FHIR mount prefix:

- `POST {prefix}/` a batch/transaction Bundle; `POST|PUT /{type}` and `PUT /{type}/{id}` a resource, as
  `application/fhir+json` or `application/json` (what `http.JSON_TYPES` accepts), with one concrete path
  per served type (`POST /Patient` takes a Patient, `resource_schemas`) next to the generic one;
  `PATCH /{type}/{id}` a JSON Patch (`application/json-patch+json`); `POST /{type}/_search` a form;
- every answer: success in the personality's media type; any error (`default`) an OperationOutcome
  in that media type, which is what `OutcomeRoute` and `install_outcome_handlers` send for every error,
  FastAPI's own request validation included (so FastAPI's `422 HTTPValidationError` is dropped).

The handlers are untouched: this documents them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from simulators.fhir.outcome import FHIR_JSON
from simulators.fhir.personality import FhirPersonality
from simulators.fhir.resource_schemas import (
    JSON_PATCH_SCHEMA,
    OPERATION_OUTCOME_SCHEMA,
    RESOURCE_SCHEMA,
    bundle_schema,
    resource_schema,
)

__all__ = ["document_fhir", "json_error_responses", "patch_openapi"]

JsonObject = dict[str, Any]
WRITE_TYPES = ("application/fhir+json", "application/json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
FHIR_MEDIA = FHIR_JSON.split(";", 1)[0]
SMART_PATHS = frozenset({"/.well-known/smart-configuration"})
OAUTH_ERROR_SCHEMA: JsonObject = {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"},
                                                 "error_description": {"type": ["string", "null"]}}}
#: Prefix of the component schemas declared here (apart from FastAPI's own)
COMPONENT = "FHIR_"
OUTCOME_REF: JsonObject = {"$ref": f"#/components/schemas/{COMPONENT}OperationOutcome"}
_ID_PARAMETER = {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}


def patch_openapi(api: FastAPI, change: Callable[[JsonObject], None]) -> None:
    """Make `api.openapi()` apply `change` to FastAPI's generated document, once (it is cached after)."""
    generate = api.openapi

    def openapi() -> JsonObject:
        if api.openapi_schema is None:
            api.openapi_schema = generate()
            change(api.openapi_schema)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _content(schema: JsonObject, media_types: Iterable[str]) -> JsonObject:
    return {media: {"schema": schema} for media in media_types}


def json_error_responses(operation: JsonObject, schema: JsonObject, media_types: Iterable[str],
                         description: str) -> None:
    """Declare `schema` as every error answer of `operation` (`default`), replacing FastAPI's 422."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    responses["default"] = {"description": description, "content": _content(schema, media_types)}


def _ref(resource_type: str) -> JsonObject:
    """A reference to one resource type's schema (declared once in `components`, `_document`)."""
    return {"$ref": f"#/components/schemas/{COMPONENT}{resource_type}"}


def _body(schema: JsonObject, media_types: Iterable[str]) -> JsonObject:
    return {"required": True, "content": _content(schema, media_types)}


def _fhir_operation(operation: JsonObject, media: str, *, ok_media: str | None = None) -> None:
    json_error_responses(operation, OUTCOME_REF, sorted({FHIR_MEDIA, media}), "An OperationOutcome")
    responses = operation["responses"]
    ok = responses.pop("200", None)
    if ok is not None:
        responses["2XX"] = {"description": "A resource, a Bundle or an OperationOutcome",
                            "content": _content({"type": "object"}, (ok_media or media,))}


def _other_operation(path: str, operation: JsonObject) -> None:
    """Token endpoints answer errors as OAuth 2.0 does (RFC 6749 §5.2); everything else as the core does.
    An operation whose route declares its own `default` answer keeps it."""
    if "default" in operation.get("responses", {}):
        operation["responses"].pop("422", None)
        return
    if path.rstrip("/").endswith("/token"):
        json_error_responses(operation, OAUTH_ERROR_SCHEMA, ("application/json",), "An OAuth 2.0 error")
    else:
        json_error_responses(operation, OUTCOME_REF, (FHIR_MEDIA,), "An OperationOutcome")


def _concrete(operation: JsonObject, resource_type: str, suffix: str) -> JsonObject:
    """A copy of `operation` for one resource type: no `resource_type` parameter, that type's body."""
    copied = copy.deepcopy(operation)
    copied["parameters"] = [p for p in copied.get("parameters", []) if p.get("name") != "resource_type"]
    for parameter in copied["parameters"]:
        if parameter.get("name") == "resource_id":
            parameter["schema"] = dict(_ID_PARAMETER)
    copied["requestBody"] = _body(_ref(resource_type), WRITE_TYPES)
    ok = copied["responses"].pop("2XX")
    etag = {"description": "The new version: W/\"<versionId>\"", "required": True, "schema": {"type": "string",
                                                                                           "pattern": '^W/"[^"]+"$'}}
    location = {"description": "The new resource (and version)", "required": True, "schema": {"type": "string"}}
    copied["responses"]["200"] = {**ok, "description": "The resource (updated, or matched by If-None-Exist)",
                                  "headers": {"ETag": etag}}
    copied["responses"]["201"] = {**ok, "description": "The resource, created", "headers": {"ETag": etag,
                                                                                            "Location": location}}
    copied["operationId"] = f"{copied.get('operationId', 'op')}_{resource_type}_{suffix}"
    return copied


def _document(doc: JsonObject, personality: FhirPersonality, prefixes: tuple[str, ...]) -> None:
    media = personality.media_type.split(";", 1)[0].strip()
    types = tuple(personality.resource_types)
    paths: JsonObject = doc.get("paths", {})
    added: JsonObject = {}
    for path, item in paths.items():
        prefix = next((p for p in prefixes if path == p or path.startswith(p + "/")), None)
        if prefix is None:
            for method in METHODS:
                if method in item:
                    _other_operation(path, item[method])
            continue
        rel = path[len(prefix):]
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            _fhir_operation(operation, media, ok_media="application/json" if rel in SMART_PATHS else None)
            if rel in ("", "/") and method == "post":
                operation["requestBody"] = _body(bundle_schema(types, _ref), WRITE_TYPES)
            elif rel == "/{resource_type}" and method in ("post", "put"):
                operation["requestBody"] = _body(RESOURCE_SCHEMA, WRITE_TYPES)
                if method == "post":
                    for resource_type in types:
                        added.setdefault(f"{prefix}/{resource_type}", {})[method] = _concrete(
                            operation, resource_type, "create")
            elif rel == "/{resource_type}/{resource_id}" and method == "put":
                operation["requestBody"] = _body(RESOURCE_SCHEMA, WRITE_TYPES)
                for resource_type in types:
                    added.setdefault(f"{prefix}/{resource_type}/{{resource_id}}", {})[method] = _concrete(
                        operation, resource_type, "update")
            elif rel == "/{resource_type}/{resource_id}" and method == "patch":
                operation["requestBody"] = _body(JSON_PATCH_SCHEMA, ("application/json-patch+json",))
            elif rel == "/{resource_type}/_search" and method == "post":
                operation["requestBody"] = _body(
                    {"type": "object", "additionalProperties": {"type": "string", "maxLength": 20}},
                    ("application/x-www-form-urlencoded",))
    for path, item in added.items():
        paths.setdefault(path, {}).update(item)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas[f"{COMPONENT}OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    for resource_type in types:
        schemas[f"{COMPONENT}{resource_type}"] = resource_schema(resource_type)


def document_fhir(api: FastAPI, personality: FhirPersonality, prefixes: Iterable[str]) -> None:
    """Declare the request bodies and answers of the FHIR API mounted at `prefixes` (module docstring)."""
    fixed = tuple(p.rstrip("/") for p in prefixes)
    patch_openapi(api, lambda doc: _document(doc, personality, fixed))
