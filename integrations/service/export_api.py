"""Export (runbook 002_437ee203264dfa64.txt §1.3, §6.2): a patient's FHIR `$everything`, for a user of an
organisation, with an API key (`Authorization: Bearer`), `X-Org-ID`, `X-User-ID` and `X-Role`.

    GET  /fhir/export/patient/{token}/$everything?start=&end=&type=   200 a FHIR Bundle (application/fhir+json)
    GET  /fhir/export/exports?limit=10        operator token: the recent exports (the audit trail, every org)

Roles: ADMIN, CLINICIAN, PATIENT, RESEARCHER (another value is 400); a PATIENT names its own token in
`X-Patient-Token`. The RBAC of §6.2 and the CARE consent are the exporter's (`ExportForbidden`,
`ConsentDenied`: 403; an unknown token 404, another organisation's 403). `start` / `end` are ISO 8601
dates or date-times (a date is midnight UTC, a naive time UTC); `type` a comma-separated list of
resource types. Every export served moves `holi_hipaa_phi_access_total{user_role, access_type="export"}`.
"""

# No `from __future__ import annotations`: FastAPI must see the `Depends(...)` of a local dependency.

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from integrations.service.auth import ExportCaller, ExportCallerAuth, OperatorAuth
from integrations.service.auth import identifier_header as header
from integrations.service.bodies import parse_moment
from integrations.service.config import ServiceConfig
from integrations.service.errors import BadRequest
from integrations.service.metrics import ServiceMetrics
from integrations.sync.export import Exporter
from integrations.sync.models import PATIENT_TOKEN, Requester, Role

JsonObject = dict[str, object]
FHIR_JSON = "application/fhir+json"
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
TOKEN_PATTERN = r"^pt_[A-Za-z0-9]{1,60}$"


def parse_types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    if not types or any(not RESOURCE_TYPE.fullmatch(t) for t in types):
        raise BadRequest("type must be a comma-separated list of FHIR resource types", code="invalid_query")
    return types


def requester(request: Request, who: ExportCaller) -> Requester:
    try:
        role = Role(who.role)
    except ValueError:
        raise BadRequest(f"X-Role must be one of {', '.join(r.value for r in Role)}", code="malformed_header") from None
    own = header(request, "X-Patient-Token", required=False)
    if own is not None and not PATIENT_TOKEN.fullmatch(own):
        raise BadRequest("malformed X-Patient-Token header", code="malformed_header")
    return Requester(user_id=who.caller.user_id, org_id=who.caller.org_id, role=role, patient_token=own)


def export_router(config: ServiceConfig, exporter: Exporter, metrics: ServiceMetrics) -> APIRouter:
    router = APIRouter(prefix="/fhir/export", tags=["export"])
    authenticated = ExportCallerAuth(config)

    @router.get("/patient/{patient_token}/$everything")
    async def everything(request: Request, who: Annotated[ExportCaller, Depends(authenticated)],
                         patient_token: Annotated[str, Path(pattern=TOKEN_PATTERN)],
                         start: Annotated[str | None, Query(max_length=40)] = None,
                         end: Annotated[str | None, Query(max_length=40)] = None,
                         type: Annotated[str | None, Query(max_length=1000)] = None) -> JSONResponse:
        asker = requester(request, who)
        since, until = parse_moment(start, "start"), parse_moment(end, "end")
        if since is not None and until is not None and since > until:
            raise BadRequest("start must not be after end", code="invalid_query")
        bundle = await exporter.export_everything(patient_token, asker, start=since, end=until,
                                                  types=parse_types(type))
        metrics.observe_phi_access(asker.role.value, "export", asker.org_id)
        return JSONResponse(bundle, media_type=FHIR_JSON)

    @router.get("/exports", dependencies=[Depends(OperatorAuth(config))])
    async def exports(limit: int = Query(10, ge=1, le=config.max_list_limit)) -> JsonObject:
        recent = exporter.recent_exports(limit)
        return {"success": True, "count": len(recent), "exports": [e.to_json() for e in recent]}

    return router
