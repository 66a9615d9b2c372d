"""Operator and cron endpoints over reconciliation (runbook 002_437ee203264dfa64.txt §2.4, §5 Step 5A,
§6.3, §7.2 Scenario 2, §10.2).

    GET  /fhir/admin/reconciliation/stats?orgId=      operator   {"stats": {encounters, observations}}
    GET  /fhir/admin/reconciliation/history?limit=20  operator   {"count", "runs": [...]}, newest first
    POST /fhir/admin/reconciliation/run               operator   {"staleDays", "batchSize", "orgId"} -> {"result"}
    POST /fhir/admin/reconciliation/cron              cron       the same body and answer

The body defaults to `ServiceConfig`'s values (staleDays 1, batchSize 1000). The stats use the service's
stale window (1 h, as §8.3's `holi_fhir_sync_stale`). A cron endpoint takes only `X-Cron-Secret` (403
without or wrong): the operator token does not open it, nor the secret the operator endpoints.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from integrations.service.auth import CronAuth, OperatorAuth
from integrations.service.bodies import ReconciliationBody, read_body
from integrations.service.config import ServiceConfig
from integrations.service.openapi_doc import body
from integrations.sync.reconciliation import Reconciler

JsonObject = dict[str, object]
DAY_S = 86_400.0
ORG_QUERY = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"


def reconciliation_router(config: ServiceConfig, reconciler: Reconciler) -> APIRouter:
    router = APIRouter(prefix="/fhir/admin/reconciliation", tags=["reconciliation"])
    operator = [Depends(OperatorAuth(config))]

    async def run(request: Request) -> JsonObject:
        body = await read_body(request, ReconciliationBody)
        stale_days = body.stale_days if body.stale_days is not None else config.reconciliation_stale_days
        batch_size = body.batch_size if body.batch_size is not None else config.reconciliation_batch_size
        result = await reconciler.run(stale_window_s=stale_days * DAY_S, batch_size=batch_size, org_id=body.org_id)
        return {"success": True, "result": result.to_json()}

    @router.get("/stats", dependencies=operator)
    async def stats(org_id: str | None = Query(None, alias="orgId", pattern=ORG_QUERY)) -> JsonObject:
        return {"success": True, "stats": reconciler.stats(org_id, config.stale_window_s).to_json()}

    @router.get("/history", dependencies=operator)
    async def history(limit: int = Query(20, ge=1, le=config.max_list_limit)) -> JsonObject:
        runs = reconciler.history(limit)
        return {"success": True, "count": len(runs), "runs": [r.to_json() for r in runs]}

    extra = body(ReconciliationBody, required=False)
    router.add_api_route("/run", run, methods=["POST"], dependencies=operator, openapi_extra=extra)
    router.add_api_route("/cron", run, methods=["POST"], dependencies=[Depends(CronAuth(config))],
                         name="reconciliation_cron", openapi_extra=extra)
    return router
