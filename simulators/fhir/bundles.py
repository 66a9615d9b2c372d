"""Batch and transaction Bundles (`POST [base]` with a Bundle of type batch or transaction).

- batch: every entry runs on its own; the `batch-response` holds each entry's status, and an entry's
  failure is its own `response.outcome`, never the whole request's.
- transaction (FHIR R4 §3.1.0.11.2): all or nothing. Entries run in the spec's order (DELETE, POST,
  PUT/PATCH, GET), `urn:uuid:` fullUrls of created resources are resolved to the new ids in every
  reference of the Bundle before anything is written, and if any entry fails the store is restored
  (`ResourceStore.atomic`) and the answer is that entry's error. The `transaction-response` lists the
  entries in the request's order.

Each entry is authorized and reported like a REST call (`FhirService.run`). Entry URLs are relative
(`Patient/1`, `Patient?identifier=x`) or absolute under this server's base. PATCH entries carry the
JSON Patch as a `Binary` (`contentType: application/json-patch+json`, base64 `data`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from simulators.fhir.http import JSON_PATCH, parse_if_match, resource_headers, valid_id
from simulators.fhir.interaction import Interaction
from simulators.fhir.outcome import OutcomeError
from simulators.fhir.service import FhirService

JsonObject = dict[str, Any]
#: Most entries one Bundle may hold.
MAX_ENTRIES = 1000
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    resource_type: str
    resource_id: str | None
    extra: list[str]  # path segments after Type/id (`_history`, a version)
    query: list[tuple[str, str]]
    resource: JsonObject | None
    full_url: str | None
    if_match: str | None
    if_none_exist: str | None


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class BundleProcessor:
    def __init__(self, service: FhirService) -> None:
        self._service = service

    def _bad(self, text: str) -> OutcomeError:
        return self._service.error(400, "invalid", text)

    async def process(self, request: Request, bundle: JsonObject, base: str) -> JsonObject:
        service = self._service
        if bundle.get("resourceType") != "Bundle":
            raise self._bad("Expected a Bundle of type batch or transaction")
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise self._bad("Bundle.type must be batch or transaction")
        if not service.personality.supports_batch:
            raise service.error(405, "not-supported", "Batch and transaction Bundles are not supported")
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list) or len(raw_entries) > MAX_ENTRIES:
            raise self._bad(f"Bundle.entry must be a list of at most {MAX_ENTRIES} entries")
        if kind == "batch":
            return await self._batch(request, raw_entries, base)
        return await self._transaction(request, raw_entries, base)

    # -- parsing ---------------------------------------------------------------------------------

    def _entry(self, index: int, raw: object, base: str) -> _Entry:
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise self._bad(f"Bundle.entry[{index}].request is required")
        req = raw["request"]
        method, url = req.get("method"), req.get("url")
        if method not in _ORDER or not isinstance(url, str) or not url:
            raise self._bad(f"Bundle.entry[{index}].request needs a method (GET POST PUT PATCH DELETE) and a url")
        if url.startswith(base + "/"):
            url = url[len(base) + 1:]
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            raise self._bad(f"Bundle.entry[{index}].request.url must be relative to this server")
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            raise self._bad(f"Bundle.entry[{index}].request.url names no resource type")
        resource = raw.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise self._bad(f"Bundle.entry[{index}].resource must be an object")
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        if_match = req.get("ifMatch") if isinstance(req.get("ifMatch"), str) else None
        if_none_exist = req.get("ifNoneExist") if isinstance(req.get("ifNoneExist"), str) else None
        resource_id = segments[1] if len(segments) > 1 else None
        if resource_id is not None and not valid_id(resource_id):
            raise self._bad(f"Bundle.entry[{index}].request.url has an invalid id")
        return _Entry(index, method, segments[0], resource_id, segments[2:],
                      parse_qsl(parts.query, keep_blank_values=True), resource, full_url, parse_if_match(if_match),
                      if_none_exist)

    def _patch_operations(self, entry: _Entry) -> object:
        binary = entry.resource or {}
        if binary.get("resourceType") != "Binary" or binary.get("contentType") != JSON_PATCH:
            raise self._bad(f"Bundle.entry[{entry.index}]: a PATCH entry carries a Binary of {JSON_PATCH}")
        try:
            return json.loads(base64.b64decode(str(binary.get("data", "")), validate=True))
        except (ValueError, binascii.Error):
            raise self._bad(f"Bundle.entry[{entry.index}]: the Binary's data is not base64 JSON") from None

    # -- running one entry -----------------------------------------------------------------------

    async def _run(self, request: Request, entry: _Entry, base: str, assigned_id: str | None = None) -> JsonObject:
        """The response entry of one successful entry; raises OutcomeError on failure."""
        service = self._service
        t, rid = entry.resource_type, entry.resource_id
        body = entry.resource or {}
        if entry.method in ("GET", "HEAD"):
            return await self._get(request, entry, base)
        action: Callable[[], Any]
        interaction: Interaction
        if entry.method == "POST":
            interaction = Interaction.CREATE
            if assigned_id is not None:
                def action() -> Any:
                    return service.create(t, body, assigned_id=assigned_id)
            else:
                def action() -> Any:
                    return service.create(t, body, entry.if_none_exist)
        elif entry.method == "PUT":
            interaction = Interaction.UPDATE
            if rid is None:
                def action() -> Any:
                    return service.conditional_update(t, entry.query, body, entry.if_match)
            else:
                def action() -> Any:
                    return service.update(t, rid, body, entry.if_match)
        elif entry.method == "PATCH":
            if rid is None:
                raise self._bad(f"Bundle.entry[{entry.index}]: PATCH needs Type/id")
            interaction, operations = Interaction.PATCH, self._patch_operations(entry)

            def action() -> Any:
                return service.patch(t, rid, operations, entry.if_match), 200
        else:
            interaction = Interaction.DELETE

            def action() -> Any:
                if rid is None:
                    return service.conditional_delete(t, entry.query), 200
                return service.delete(t, rid, entry.if_match), 200

        result, status = await service.run(request, t, interaction, rid, action)
        response: JsonObject = {"status": _status_line(status)}
        if entry.method == "DELETE":
            return {"response": response}
        headers = resource_headers(result, base, 201, location_with_version=True)
        response.update({"location": headers["Location"].removeprefix(base + "/"), "etag": headers.get("ETag"),
                         "lastModified": result["meta"]["lastUpdated"]})
        return {"fullUrl": f"{base}/{t}/{result['id']}", "resource": result, "response": response}

    async def _get(self, request: Request, entry: _Entry, base: str) -> JsonObject:
        service = self._service
        t, rid, url = entry.resource_type, entry.resource_id, f"{base}/{entry.resource_type}"
        if rid is None:
            body = await service.run(request, t, Interaction.SEARCH, None,
                                     lambda: service.search(t, entry.query, url=url, base=base))
        elif entry.extra[:1] == ["_history"] and len(entry.extra) == 2:
            body = await service.run(request, t, Interaction.VREAD, rid, lambda: service.vread(t, rid, entry.extra[1]))
        elif entry.extra:
            raise self._bad(f"Bundle.entry[{entry.index}]: unsupported GET url")
        else:
            body = await service.run(request, t, Interaction.READ, rid, lambda: service.read(t, rid))
        return {"resource": body, "response": {"status": "200 OK"}}

    # -- the two kinds ---------------------------------------------------------------------------

    async def _batch(self, request: Request, raw_entries: list[Any], base: str) -> JsonObject:
        entries: list[JsonObject] = []
        for index, raw in enumerate(raw_entries):
            try:
                entries.append(await self._run(request, self._entry(index, raw, base), base))
            except OutcomeError as exc:
                entries.append({"response": {"status": _status_line(exc.status), "outcome": exc.outcome}})
        return {"resourceType": "Bundle", "type": "batch-response", **({"entry": entries} if entries else {})}

    async def _transaction(self, request: Request, raw_entries: list[Any], base: str) -> JsonObject:
        service = self._service
        service.check_writable()
        entries = [self._entry(index, raw, base) for index, raw in enumerate(raw_entries)]
        # Reserve ids for created resources and point every urn:uuid reference at them.
        reserved: dict[int, str] = {}
        aliases: dict[str, str] = {}
        for entry in entries:
            if entry.method == "POST" and entry.full_url and entry.full_url.startswith("urn:uuid:") \
                    and entry.if_none_exist is None:
                reserved[entry.index] = service.store.new_id()
                aliases[entry.full_url] = f"{entry.resource_type}/{reserved[entry.index]}"
        if aliases:
            for entry in entries:
                if entry.resource is not None:
                    entry.resource = _resolve(entry.resource, aliases)
        results: dict[int, JsonObject] = {}
        with service.store.atomic():
            for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
                results[entry.index] = await self._run(request, entry, base, reserved.get(entry.index))
        listed = [results[entry.index] for entry in entries]
        return {"resourceType": "Bundle", "type": "transaction-response", **({"entry": listed} if listed else {})}


def _resolve(value: Any, aliases: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (aliases.get(v, v) if k == "reference" and isinstance(v, str) else _resolve(v, aliases))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(item, aliases) for item in value]
    return value
