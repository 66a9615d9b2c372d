"""Operator and cron endpoints over the audit mirror (runbook 002_437ee203264dfa64.txt §2.6, §5 Step 5B, §6.3,
§10.2), the component being `integrations.sync.audit_mirror.AuditMirror`.

    GET  /fhir/admin/audit-mirror/stats     operator  {"stats": {lastRun, lastSyncedAt, totalMirrored, recentRuns}}
    POST /fhir/admin/audit-mirror/run       operator  {"limit": 1000, "forceSince": ...} -> {"result": {...}}
    POST /fhir/admin/audit-mirror/cron      cron      the same body and answer
    GET  /fhir/admin/audit-mirror/search    operator  ?orgId=&eventTypes=A,B&since=&until=&agentReference=
                                                      &entityReference=&limit=100 -> {"count", "events": [...]}

The body is optional (`limit` defaults to `ServiceConfig.audit_mirror_limit`, 1000 as in §5 Step 5B);
`forceSince` and the search's `since`/`until` are ISO 8601 dates or date-times (a date is midnight UTC, a
naive time UTC), as the export's `start`/`end`. A run that Medplum stopped (the mirror's `failure`: the
connector's error class) answers 502 `audit_mirror_failed` with the result beside the error, so a scheduler's
`curl -f` notices; the pages finished before it are kept and the next run resumes from them. Malformed
AuditEvents do not fail a run: they are counted in `errors`. A cron endpoint takes only `X-Cron-Secret` (403
without or wrong): the operator token does not open it, nor the secret the operator endpoints.

Bad input is a 4xx before anything runs: a body of the wrong shape 422 (`invalid_request`), text that is not
JSON 400 (`malformed_json`), an unknown event type, a malformed date or `since` after `until` 400
(`invalid_query`), a malformed organisation id or reference or an out-of-range `limit` 422.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from integrations.service.auth import CronAuth, OperatorAuth
from integrations.service.bodies import AuditMirrorBody, parse_moment, read_body
from integrations.service.config import ServiceConfig
from integrations.service.errors import BadRequest
from integrations.service.openapi_doc import body
from integrations.service.reconciliation_api import ORG_QUERY
from integrations.sync.audit_mirror import AuditMirror, MirrorEventType

JsonObject = dict[str, object]
#: `Type/id`, as the mirror stores references (`integrations.sync.audit_mirror_parse.REFERENCE`).
REFERENCE_QUERY = r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-._]{1,64}$"
EVENT_TYPES = tuple(t.value for t in MirrorEventType)


def _event_types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    if not types or any(t not in EVENT_TYPES for t in types):
        raise BadRequest(f"eventTypes must be a comma-separated list of {', '.join(EVENT_TYPES)}",
                         code="invalid_query")
    return types


def audit_mirror_router(config: ServiceConfig, mirror: AuditMirror) -> APIRouter:
    router = APIRouter(prefix="/fhir/admin/audit-mirror", tags=["audit-mirror"])
    operator = [Depends(OperatorAuth(config))]

    async def run(request: Request) -> JSONResponse:
        body = await read_body(request, AuditMirrorBody)
        limit = body.limit if body.limit is not None else config.audit_mirror_limit
        result = await mirror.run(limit=limit, force_since=body.force_since)
        if result.failure is not None:
            return JSONResponse({"success": False, "error": "audit_mirror_failed",
                                 "detail": f"the run stopped on {result.failure} after {result.fetched} "
                                           "AuditEvents; the next run resumes where it stopped",
                                 "result": result.to_json()}, status_code=502)
        return JSONResponse({"success": True, "result": result.to_json()})

    @router.get("/stats", dependencies=operator)
    async def stats(recent: int = Query(10, ge=1, le=100)) -> JsonObject:
        return {"success": True, "stats": mirror.stats(recent).to_json()}

    @router.get("/search", dependencies=operator)
    async def search(org_id: str | None = Query(None, alias="orgId", pattern=ORG_QUERY),
                     event_types: str | None = Query(None, alias="eventTypes", max_length=200),
                     since: str | None = Query(None, max_length=40),
                     until: str | None = Query(None, max_length=40),
                     agent_reference: str | None = Query(None, alias="agentReference", pattern=REFERENCE_QUERY),
                     entity_reference: str | None = Query(None, alias="entityReference", pattern=REFERENCE_QUERY),
                     limit: int = Query(100, ge=1, le=config.max_list_limit)) -> JsonObject:
        types = _event_types(event_types)
        start, end = parse_moment(since, "since"), parse_moment(until, "until")
        if start is not None and end is not None and start > end:
            raise BadRequest("since must not be after until", code="invalid_query")
        events = mirror.search(org_id=org_id, event_types=types, since=start, until=end,
                               agent_reference=agent_reference, entity_reference=entity_reference, limit=limit)
        return {"success": True, "count": len(events), "events": [e.to_json() for e in events]}

    extra = body(AuditMirrorBody, required=False)
    router.add_api_route("/run", run, methods=["POST"], dependencies=operator, name="audit_mirror_run",
                         openapi_extra=extra)
    router.add_api_route("/cron", run, methods=["POST"], dependencies=[Depends(CronAuth(config))],
                         name="audit_mirror_cron", openapi_extra=extra)
    return router
