"""`create_service(config, components) -> FastAPI`: the integration service's app.

Routers: health (`integrations.service.health`), provider status and feature flags, the job queue
(`integrations.service.admin`), `/metrics` (here), and, for each sync component present, its routes:
reconciliation (`reconciliation_api`), ingress (`ingress_api`), export (`export_api`), the audit mirror
(`audit_mirror_api`); a component left out (None) leaves its routes out. Errors become JSON at one boundary
(`errors.install_error_handlers`); every request is counted and timed on the injected clock
(`metrics.HttpMetrics`). The app has no lifespan of its own: the caller starts and stops the components
(`harness/service_cmd.py`).

`GET /metrics` (Prometheus text format) and `GET /metrics/json` need the operator token: they carry
organisation ids. Before rendering, the queue gauges and the sync drift gauges are refreshed.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from prometheus_client.parser import text_string_to_metric_families

from integrations.service.admin import flags_router, queue_router
from integrations.service.audit_mirror_api import audit_mirror_router
from integrations.service.auth import OperatorAuth
from integrations.service.components import ServiceComponents
from integrations.service.config import ServiceConfig
from integrations.service.errors import install_error_handlers
from integrations.service.export_api import export_router
from integrations.service.health import health_router
from integrations.service.ingress_api import ingress_router
from integrations.service.metrics import METRICS_CONTENT_TYPE, AuditSource, HttpMetrics
from integrations.service.openapi_doc import document_service
from integrations.service.reconciliation_api import reconciliation_router
from integrations.sync.database import AppDatabase

JsonObject = dict[str, object]


async def refresh_metrics(config: ServiceConfig, components: ServiceComponents) -> None:
    metrics = components.metrics
    metrics.refresh_queue(components.queue.name, await components.queue.stats())
    if components.reconciler is not None:
        stats = components.reconciler.stats(stale_window_s=config.stale_window_s)
        for resource_type, kind in (("Encounter", stats.encounters), ("Observation", stats.observations)):
            metrics.set_sync_drift(resource_type, kind.not_synced, kind.stale)


def audit_counts(database: AppDatabase) -> AuditSource:
    """Audit events per (type, organisation), read from the trail's table (see `metrics.AuditCounts`)."""

    def counts() -> dict[tuple[str, str], int]:
        rows = database.connection.execute(
            "SELECT event_type, org_id, COUNT(*) FROM audit_events GROUP BY event_type, org_id").fetchall()
        return {(str(t), str(o)): int(n) for t, o, n in rows}

    return counts


def metrics_router(config: ServiceConfig, components: ServiceComponents) -> APIRouter:
    router = APIRouter(tags=["metrics"], dependencies=[Depends(OperatorAuth(config))])

    @router.get("/metrics")
    async def metrics() -> Response:
        await refresh_metrics(config, components)
        return Response(components.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @router.get("/metrics/json")
    async def metrics_json() -> JsonObject:
        await refresh_metrics(config, components)
        families = text_string_to_metric_families(components.metrics.render().decode("utf-8"))
        return {"success": True, "metrics": {
            f.name: {"type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                                                 for s in f.samples]} for f in families}}

    return router


def create_service(config: ServiceConfig, components: ServiceComponents) -> FastAPI:
    app = FastAPI(title="ehrlab integration service", version=config.version, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    document_service(app)
    app.include_router(health_router(config, components))
    app.include_router(flags_router(config, components))
    app.include_router(queue_router(config, components))
    app.include_router(metrics_router(config, components))
    if components.reconciler is not None:
        app.include_router(reconciliation_router(config, components.reconciler))
    if components.ingress is not None:
        app.include_router(ingress_router(config, components.ingress))
    if components.exporter is not None:
        app.include_router(export_router(config, components.exporter, components.metrics))
    if components.audit_mirror is not None:
        app.include_router(audit_mirror_router(config, components.audit_mirror))
    if components.database is not None:
        components.metrics.audit_counts.source = audit_counts(components.database)
    app.add_middleware(HttpMetrics, metrics=components.metrics, clock=components.clock)
    return app
