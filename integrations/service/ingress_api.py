"""Ingress (runbook 002_437ee203264dfa64.txt §1.3, §6.1): the endpoints external systems call, with an API
key (`Authorization: Bearer`) and `X-Org-ID` (see `auth`; `X-User-ID` optional, the key's name otherwise).

    POST /fhir/inbound/observation            201 {"success", "resourceType", "id"}: the local record id
    POST /fhir/inbound/encounter              201 likewise
    POST /fhir/inbound/batch                  200 {"success", "total", "succeeded", "failed", "results"}

Ingress validates everything before writing anything (`integrations.sync.ingress`): a malformed body,
an invalid resource, an unknown patient token or another organisation's patient is a 4xx and no record,
job or audit row. A batch is processed entry by entry (FHIR `batch` semantics): a Bundle that is not a
batch is a 4xx; inside a valid one, a bad entry fails alone and is reported in `results`.
"""

# No `from __future__ import annotations`: FastAPI must see the `Depends(...)` of a local dependency.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from integrations.service.auth import Caller, CallerAuth
from integrations.service.bodies import read_object
from integrations.service.config import ServiceConfig
from integrations.service.openapi_doc import INGRESS_BUNDLE, INGRESS_ENCOUNTER, INGRESS_OBSERVATION, schema_body
from integrations.sync.ingress import Ingress

JsonObject = dict[str, object]


def ingress_router(config: ServiceConfig, ingress: Ingress) -> APIRouter:
    router = APIRouter(prefix="/fhir/inbound", tags=["ingress"])
    authenticated = CallerAuth(config)

    @router.post("/observation", status_code=201, openapi_extra=schema_body(INGRESS_OBSERVATION))
    async def observation(request: Request, caller: Annotated[Caller, Depends(authenticated)]) -> JSONResponse:
        resource = await read_object(request)
        done = ingress.ingest(resource, caller.org_id, caller.user_id, expected="Observation")
        return JSONResponse(done.to_json(), status_code=201)

    @router.post("/encounter", status_code=201, openapi_extra=schema_body(INGRESS_ENCOUNTER))
    async def encounter(request: Request, caller: Annotated[Caller, Depends(authenticated)]) -> JSONResponse:
        resource = await read_object(request)
        done = ingress.ingest(resource, caller.org_id, caller.user_id, expected="Encounter")
        return JSONResponse(done.to_json(), status_code=201)

    @router.post("/batch", openapi_extra=schema_body(INGRESS_BUNDLE))
    async def batch(request: Request, caller: Annotated[Caller, Depends(authenticated)]) -> JsonObject:
        bundle = await read_object(request)
        return ingress.ingest_batch(bundle, caller.org_id, caller.user_id).to_json()

    return router
