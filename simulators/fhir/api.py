"""The FHIR R4 REST API every vendor simulator mounts: `fhir_router(...)`.

    router = fhir_router(store=store, personality=personality, clock=clock, rng=rng, authorize=authorize,
                         on_interaction=hook)
    app.include_router(router, prefix="/r4/{tenant}")   # or /fhir/R4, /api/FHIR/R4, ...

Everything is relative to the mount prefix (a prefix may hold path parameters: base URLs are taken
from the request itself, `simulators.fhir.http.fhir_base`):

    GET    /metadata                          CapabilityStatement (no token needed)
    GET    /.well-known/smart-configuration   the personality's SMART configuration, if it has one
    POST   /                                  batch / transaction Bundle
    GET    /_history, /{type}/_history, /{type}/{id}/_history, /{type}/{id}/_history/{vid}
    GET    /$export, /Patient/$export, /Group/{id}/$export, /$export-status/{job}, /$export-file/...
    GET    /Patient/{id}/$everything
    GET    /{type}  POST /{type}/_search      search
    POST   /{type}                            create (If-None-Exist: conditional create)
    PUT    /{type}?search                     conditional update;   DELETE /{type}?search: conditional delete
    GET|PUT|PATCH|DELETE /{type}/{id}         read, update/upsert (If-Match), JSON Patch, delete

Every resource interaction goes through the vendor's `authorize` first and ends in `on_interaction`
(`simulators.fhir.interaction`); statuses and error shapes come from the personality
(`simulators.fhir.service`). Writes honour `Prefer: return=minimal` (no body). Anything else under the
prefix is 404. Stored resources go out as the store's cached JSON (`ResourceStore.encoded`,
`http.dump_bundle`). `fhir_asgi(router)` (`simulators.fhir.dispatch`) serves the same endpoints without
FastAPI's per-request routing and dependency machinery; a vendor puts it in front with `FhirFastPath`
(Medplum does) and keeps the router included, where it documents the API in /openapi.json.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import Response

from integrations.clock import Clock
from simulators.fhir.bundles import BundleProcessor
from simulators.fhir.capability import capability_statement
from simulators.fhir.dispatch import fhir_asgi
from simulators.fhir.export import ExportJobs, add_export_routes
from simulators.fhir.http import (
    JSON_PATCH,
    dump_bundle,
    fhir_base,
    json_response,
    parse_if_match,
    read_body,
    read_json_body,
    read_resource_body,
    resource_headers,
    valid_id,
)
from simulators.fhir.interaction import Authorizer, Interaction, InteractionHook
from simulators.fhir.outcome import OutcomeRoute
from simulators.fhir.paging import Pager
from simulators.fhir.personality import FhirPersonality
from simulators.fhir.service import FhirService
from simulators.fhir.store import ResourceStore

__all__ = ["Authorizer", "Interaction", "InteractionHook", "fhir_asgi", "fhir_router"]

FORM = "application/x-www-form-urlencoded"


def _items(request: Request) -> list[tuple[str, str]]:
    """The query's (name, value) pairs in order: `request.query_params.multi_items()` without the multidict."""
    return parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)


def _fill(value: Any, names: Mapping[str, str]) -> Any:
    """`value` with `{server}` and `{base}` replaced in every string (SMART configurations' URLs)."""
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace(name, replacement)
        return value
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    return value


def fhir_router(*, store: ResourceStore, personality: FhirPersonality, clock: Clock, rng: random.Random,
                authorize: Authorizer, on_interaction: InteractionHook | None = None) -> APIRouter:
    """The FHIR REST API over `store`, behaving as `personality`; see the module docstring."""
    router = APIRouter(route_class=OutcomeRoute)
    pager = Pager(personality, clock, rng)
    service = FhirService(store=store, personality=personality, pager=pager, authorize=authorize,
                          on_interaction=on_interaction)
    bundles = BundleProcessor(service)
    jobs = ExportJobs(service, clock, rng)
    p = personality

    def written(request: Request, resource: Mapping[str, Any], status: int, segments: int) -> Response:
        base = fhir_base(request, segments)
        headers = resource_headers(resource, base, status, location_with_version=p.location_with_version)
        if "return=minimal" in request.headers.get("prefer", ""):
            return Response(status_code=status, headers=headers)
        return json_response(p, resource, status, headers)

    def send(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A resource or Bundle, using the store's cached JSON for stored resources."""
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            return json_response(p, dump_bundle(body, store.encoded, store.encoded_match), status, headers)
        if isinstance(body, dict) and "meta" in body:
            return json_response(p, store.encoded(body), status, headers)
        return json_response(p, body, status, headers)

    def check_id(resource_id: str) -> None:
        if not valid_id(resource_id):
            raise service.error(400, "invalid", "Invalid resource id")

    # -- server-level ----------------------------------------------------------------------------

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        today = clock.now().date().isoformat()
        base = fhir_base(request, 1)
        statement = capability_statement(p, base=base, date=today)
        return json_response(p, _fill(statement, {"{server}": f"{request.url.scheme}://{request.url.netloc}",
                                                  "{base}": base}))

    @router.get("/.well-known/smart-configuration")
    async def smart_configuration(request: Request) -> Response:
        if p.smart_configuration is None:
            raise service.error(404, "not-found", "Not found")
        server = f"{request.url.scheme}://{request.url.netloc}"
        body = _fill(p.smart_configuration, {"{server}": server, "{base}": fhir_base(request, 2)})
        return json_response(p, body, media_type="application/json")

    @router.post("/")
    @router.post("")
    async def bundle(request: Request) -> Response:
        body = await read_resource_body(request, p)
        return send(await bundles.process(request, body, fhir_base(request, 0)))

    @router.get("/_history")
    async def system_history(request: Request) -> Response:
        base = fhir_base(request, 1)
        return send(await service.run(
            request, "*", Interaction.HISTORY, None,
            lambda: service.history(None, None, _items(request), url=f"{base}/_history", base=base)))

    add_export_routes(router, service, jobs)

    # -- type-level ------------------------------------------------------------------------------

    @router.get("/{resource_type}/_history")
    async def type_history(resource_type: str, request: Request) -> Response:
        base = fhir_base(request, 2)
        return send(await service.run(
            request, resource_type, Interaction.HISTORY, None,
            lambda: service.history(resource_type, None, _items(request), url=f"{base}/{resource_type}/_history",
                                    base=base)))

    # The hot paths come right after the routes they must not shadow: FastAPI tries routes in order.
    @router.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str, request: Request) -> Response:
        resource = await service.run(request, resource_type, Interaction.READ, resource_id,
                                     lambda: service.read(resource_type, resource_id))
        return send(resource, 200, resource_headers(resource, "", 200))

    async def run_search(request: Request, resource_type: str, items: list[tuple[str, str]], segments: int) -> Response:
        base = fhir_base(request, segments)
        return send(await service.run(
            request, resource_type, Interaction.SEARCH, None,
            lambda: service.search(resource_type, items, url=f"{base}/{resource_type}", base=base)))

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        return await run_search(request, resource_type, _items(request), 1)

    @router.post("/{resource_type}/_search")
    async def search_post(resource_type: str, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != FORM:
            raise service.error(415, "not-supported", f"_search takes {FORM}")
        raw = await read_body(request, p)
        form = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return await run_search(request, resource_type, [*_items(request), *form], 2)

    @router.post("/{resource_type}")
    async def create(resource_type: str, request: Request) -> Response:
        async def action() -> tuple[dict[str, Any], int]:
            body = await read_resource_body(request, p)
            return service.create(resource_type, body, request.headers.get("if-none-exist"))

        resource, status = await service.run_async(request, resource_type, Interaction.CREATE, None, action)
        return written(request, resource, status, 1)

    @router.put("/{resource_type}")
    async def conditional_update(resource_type: str, request: Request) -> Response:
        async def action() -> tuple[dict[str, Any], int]:
            body = await read_resource_body(request, p)
            if_match = parse_if_match(request.headers.get("if-match"))
            return service.conditional_update(resource_type, _items(request), body, if_match)

        resource, status = await service.run_async(request, resource_type, Interaction.UPDATE, None, action)
        return written(request, resource, status, 1)

    @router.delete("/{resource_type}")
    async def conditional_delete(resource_type: str, request: Request) -> Response:
        outcome = await service.run(request, resource_type, Interaction.DELETE, None,
                                    lambda: service.conditional_delete(resource_type, _items(request)))
        return json_response(p, outcome)

    # -- instance-level --------------------------------------------------------------------------

    @router.get("/Patient/{resource_id}/$everything")
    async def everything(resource_id: str, request: Request) -> Response:
        base = fhir_base(request, 3)
        return send(await service.run(
            request, "Patient", Interaction.OPERATION, resource_id,
            lambda: service.everything(resource_id, _items(request), url=f"{base}/Patient/{resource_id}/$everything",
                                       base=base)))

    @router.get("/{resource_type}/{resource_id}/_history/{version_id}")
    async def vread(resource_type: str, resource_id: str, version_id: str, request: Request) -> Response:
        resource = await service.run(request, resource_type, Interaction.VREAD, resource_id,
                                     lambda: service.vread(resource_type, resource_id, version_id))
        return send(resource, 200, resource_headers(resource, "", 200))

    @router.get("/{resource_type}/{resource_id}/_history")
    async def instance_history(resource_type: str, resource_id: str, request: Request) -> Response:
        base = fhir_base(request, 3)
        url = f"{base}/{resource_type}/{resource_id}/_history"
        return send(await service.run(
            request, resource_type, Interaction.HISTORY, resource_id,
            lambda: service.history(resource_type, resource_id, _items(request), url=url, base=base)))

    @router.put("/{resource_type}/{resource_id}")
    async def update(resource_type: str, resource_id: str, request: Request) -> Response:
        async def action() -> tuple[dict[str, Any], int]:
            check_id(resource_id)
            body = await read_resource_body(request, p)
            return service.update(resource_type, resource_id, body, parse_if_match(request.headers.get("if-match")))

        resource, status = await service.run_async(request, resource_type, Interaction.UPDATE, resource_id, action)
        return written(request, resource, status, 2)

    @router.patch("/{resource_type}/{resource_id}")
    async def patch(resource_type: str, resource_id: str, request: Request) -> Response:
        async def action() -> dict[str, Any]:
            service.check_type(resource_type)
            service.check_writable()
            operations = await read_json_body(request, p, allowed=frozenset({JSON_PATCH}))
            return service.patch(resource_type, resource_id, operations,
                                 parse_if_match(request.headers.get("if-match")))

        resource = await service.run_async(request, resource_type, Interaction.PATCH, resource_id, action)
        return written(request, resource, 200, 2)

    @router.delete("/{resource_type}/{resource_id}")
    async def delete(resource_type: str, resource_id: str, request: Request) -> Response:
        if_match = parse_if_match(request.headers.get("if-match"))
        outcome = await service.run(request, resource_type, Interaction.DELETE, resource_id,
                                    lambda: service.delete(resource_type, resource_id, if_match))
        return json_response(p, outcome)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unsupported(rest: str, request: Request) -> Response:
        raise service.error(404, "not-found", "Not found")

    return router
