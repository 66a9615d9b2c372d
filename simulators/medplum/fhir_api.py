"""Medplum's FHIR REST API at /fhir/R4: create, read, update (If-Match), search by `_id`.

Faithful to @medplum/fhir-router (fhirrouter.ts) and packages/server/src/fhir/response.ts
(reference/vendors.md §3):
- every call needs a valid Bearer token (checked before anything else, as Medplum's auth middleware);
- writes take `application/json` or `application/fhir+json`; another content type leaves the body
  empty, as Express's JSON parser does, hence "Incorrect resource type: expected X, but found <EMPTY>";
  unparsable JSON is "Content could not be parsed";
- `If-Match`: the value between the first pair of quotes (`W/"x"` and `"x"` both mean `x`); a value
  without quotes is ignored, as Medplum's `parseIfMatchHeader` does. A mismatch is 412
  `precondition-failed`; If-Match on a resource that does not exist is 404 (MemoryRepository);
- PUT needs the body's `resourceType` and `id` to match the URL ("Incorrect ID"); PUT to a new id
  creates it (201 with Location);
- responses carry `ETag: W/"<versionId>"` and `Last-Modified`; creates also `Location`;
- search supports `_id` (comma = OR, repeated = AND) and `_count` (no paging links yet); any other
  parameter is 400 "Unknown search parameter" rather than silently ignored. The Bundle's `self` link
  and entries' `fullUrl` are built from the request's own scheme, host and port.
Unsupported interactions (delete, patch, history, operations) and unknown types answer 404 `not-found`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from simulators.errors import InvalidResource, ResourceNotFound, VersionConflict
from simulators.fhir.outcome import JsonObject, OutcomeError, OutcomeRoute, fhir_response
from simulators.fhir.store import Resource, ResourceStore
from simulators.medplum.auth import TokenStore, bearer_auth
from simulators.medplum.outcomes import bad_request, not_found, precondition_failed

FHIR_BASE = "/fhir/R4"
_JSON_TYPES = ("application/json", "application/fhir+json")
_IF_MATCH = re.compile(r'"([^"]+)"')
#: Search parameters that change nothing here but must not be refused.
_IGNORED_PARAMS = frozenset({"_total", "_format", "_pretty"})


def parse_if_match(value: str | None) -> str | None:
    """Medplum's parseIfMatchHeader: the text between the first pair of quotes, else None."""
    if not value:
        return None
    match = _IF_MATCH.search(value)
    return match.group(1) if match else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _json_body(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    raw = await request.body()
    if media_type not in _JSON_TYPES or not raw:
        return {}
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise OutcomeError(400, bad_request("Content could not be parsed")) from None
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {}  # Express accepts a JSON array; it has no resourceType
    raise OutcomeError(400, bad_request("Content could not be parsed"))


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + FHIR_BASE


def _resource_response(request: Request, resource: Resource, status: int = 200) -> Response:
    meta = resource["meta"]
    headers = {
        "ETag": f'W/"{meta["versionId"]}"',
        "Last-Modified": format_datetime(datetime.fromisoformat(meta["lastUpdated"]), usegmt=True),
    }
    if status == 201:
        headers["Location"] = f"{_base_url(request)}/{resource['resourceType']}/{resource['id']}"
    return fhir_response(resource, status, headers)


def _incorrect_type(expected: str, found: object) -> OutcomeError:
    shown = found if isinstance(found, str) and found else "<EMPTY>"
    return OutcomeError(400, bad_request(f"Incorrect resource type: expected {expected}, but found {shown}"))


def _invalid(exc: InvalidResource) -> OutcomeError:
    return OutcomeError(400, bad_request(exc.message, exc.expression))


def fhir_router(store: ResourceStore, tokens: TokenStore, resource_types: Collection[str]) -> APIRouter:
    router = APIRouter(prefix=FHIR_BASE, route_class=OutcomeRoute, dependencies=[bearer_auth(tokens)])
    supported = frozenset(resource_types)

    def check_type(resource_type: str) -> None:
        if resource_type not in supported:
            raise OutcomeError(404, not_found())

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        check_type(resource_type)
        ids: set[str] | None = None
        count: int | None = None
        for name, value in request.query_params.multi_items():
            if name == "_id":
                wanted = {part for part in value.split(",") if part}
                ids = wanted if ids is None else ids & wanted
            elif name == "_count":
                if not value.isdigit():
                    raise OutcomeError(400, bad_request("Invalid _count: must be a non-negative integer"))
                count = int(value)
            elif name not in _IGNORED_PARAMS:
                raise OutcomeError(400, bad_request(f"Unknown search parameter: {name}"))
        matches = store.search(resource_type, ids=None if ids is None else sorted(ids))
        page = matches if count is None else matches[:count]
        base = _base_url(request)
        bundle: JsonObject = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
        if page:  # FHIR JSON has no empty arrays
            bundle["entry"] = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in page]
        bundle["link"] = [{"relation": "self", "url": str(request.url)}]
        return fhir_response(bundle)

    @router.post("/{resource_type}")
    async def create(resource_type: str, request: Request) -> Response:
        check_type(resource_type)
        body = await _json_body(request)
        if body.get("resourceType") != resource_type:
            raise _incorrect_type(resource_type, body.get("resourceType"))
        try:
            created = store.create(body)
        except InvalidResource as exc:
            raise _invalid(exc) from None
        return _resource_response(request, created, 201)

    @router.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str, request: Request) -> Response:
        check_type(resource_type)
        try:
            resource = store.read(resource_type, resource_id)
        except ResourceNotFound:
            raise OutcomeError(404, not_found()) from None
        return _resource_response(request, resource)

    @router.put("/{resource_type}/{resource_id}")
    async def update(resource_type: str, resource_id: str, request: Request) -> Response:
        check_type(resource_type)
        body = await _json_body(request)
        if body.get("resourceType") != resource_type:
            raise _incorrect_type(resource_type, body.get("resourceType"))
        if body.get("id") != resource_id:
            raise OutcomeError(400, bad_request("Incorrect ID"))
        try:
            resource, created = store.upsert(body, expected_version=parse_if_match(request.headers.get("if-match")))
        except VersionConflict:
            raise OutcomeError(412, precondition_failed()) from None
        except ResourceNotFound:
            raise OutcomeError(404, not_found()) from None
        except InvalidResource as exc:
            raise _invalid(exc) from None
        return _resource_response(request, resource, 201 if created else 200)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def unsupported(rest: str) -> Response:
        raise OutcomeError(404, not_found())

    return router
