"""Kubernetes-style health endpoints (runbook 002_437ee203264dfa64.txt §8.2) and a provider's health
(runbook 000_030ea53f0735abf7.txt §8 "Verify Fallback Active": `/health/epic` shows `fallback_active`).

Unauthenticated, as probes are; they reveal no data, only states.

| path              | checks                     | 503 when                                             |
|-------------------|----------------------------|------------------------------------------------------|
| `/health`         | database, queue, medplum   | the database or the queue is unhealthy               |
| `/health/live`    | none                       | never (the process answers)                          |
| `/health/ready`   | database, queue            | one is unhealthy, or startup is not complete         |
| `/health/startup` | database, queue            | startup is not complete (worker and monitors started) |
| `/health/{vendor}`| that provider's monitor    | the provider is UNHEALTHY (404: no such provider)     |

Body: `{"status": "healthy"|"degraded"|"unhealthy", "timestamp": ..., "checks": {name: state}}`;
`checks.queue` is the job queue's store (SQLite or Redis: the runbook's `redis`), `checks.medplum` the
provider monitor's band (`degraded` while its fallback is active). A provider that is down makes the
service `degraded`, not `unhealthy`: writes are still accepted and queued.
"""

from __future__ import annotations

import logging
import sqlite3

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from integrations.events import HealthStatus
from integrations.queue import StoreUnavailable
from integrations.resilience import ProviderStatus, ResilientFhirClient
from integrations.service.components import ServiceComponents
from integrations.service.config import ServiceConfig
from integrations.service.errors import NotFound
from integrations.sync.models import iso

logger = logging.getLogger(__name__)

HEALTHY, DEGRADED, UNHEALTHY, NOT_CONFIGURED = "healthy", "degraded", "unhealthy", "not_configured"
_BAND = {HealthStatus.HEALTHY: HEALTHY, HealthStatus.DEGRADED: DEGRADED, HealthStatus.UNHEALTHY: UNHEALTHY}


def provider_json(status: ProviderStatus) -> dict[str, object]:
    return {
        "vendor": status.vendor, "health": status.health.value, "connected": status.connected,
        "healthy": status.healthy, "response_time_ms": status.response_time_ms,
        "p95_latency_ms": status.p95_latency_ms, "success_rate": status.success_rate, "samples": status.samples,
        "uptime_percentage": status.uptime_percentage, "error_count": status.error_count,
        "breaker_state": status.breaker_state.value if status.breaker_state is not None else None,
        "last_check_at": iso(status.last_check_at), "fallback_active": status.fallback_active,
    }


def provider_state(client: ResilientFhirClient) -> str:
    status = client.status()
    band = _BAND[status.health]
    return DEGRADED if band == HEALTHY and status.fallback_active else band


class HealthChecks:
    def __init__(self, config: ServiceConfig, components: ServiceComponents) -> None:
        self._config = config
        self._c = components

    def database(self) -> str:
        if self._c.database is None:
            return NOT_CONFIGURED
        try:
            self._c.database.connection.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            logger.warning("database health check failed: %s", type(exc).__name__)
            return UNHEALTHY
        return HEALTHY

    async def queue(self) -> str:
        try:
            await self._c.queue.stats()
        except StoreUnavailable:
            return UNHEALTHY
        return HEALTHY

    def provider(self) -> str:
        client = self._c.providers.get(self._config.vendor)
        return NOT_CONFIGURED if client is None else provider_state(client)

    async def answer(self, *, with_provider: bool, needs_startup: bool) -> JSONResponse:
        checks = {"database": self.database(), "queue": await self.queue()}
        if with_provider:
            checks[self._config.vendor] = self.provider()
        if needs_startup and not self._c.startup.complete:
            checks["startup"] = "starting"
        core_down = UNHEALTHY in (checks["database"], checks["queue"]) or checks.get("startup") == "starting"
        if core_down:
            status = UNHEALTHY
        elif any(state in (DEGRADED, UNHEALTHY) for state in checks.values()):
            status = DEGRADED
        else:
            status = HEALTHY
        body = {"status": status, "timestamp": iso(self._c.clock.now()), "checks": checks}
        return JSONResponse(body, status_code=503 if core_down else 200)


def health_router(config: ServiceConfig, components: ServiceComponents) -> APIRouter:
    router = APIRouter(tags=["health"])
    checks = HealthChecks(config, components)

    @router.get("/health")
    async def health() -> JSONResponse:
        return await checks.answer(with_provider=True, needs_startup=False)

    @router.get("/health/live")
    async def live() -> JSONResponse:
        return JSONResponse({"status": HEALTHY, "timestamp": iso(components.clock.now()), "checks": {}})

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        return await checks.answer(with_provider=False, needs_startup=True)

    @router.get("/health/startup")
    async def startup() -> JSONResponse:
        return await checks.answer(with_provider=False, needs_startup=True)

    @router.get("/health/{vendor}")
    async def vendor_health(vendor: str) -> JSONResponse:
        client = components.providers.get(vendor)
        if client is None:
            raise NotFound(f"no provider {vendor!r} (known: {', '.join(sorted(components.providers)) or 'none'})",
                           code="unknown_provider")
        status = client.status()
        state = provider_state(client)
        body = {"status": state, "timestamp": iso(components.clock.now()), **provider_json(status)}
        return JSONResponse(body, status_code=503 if state == UNHEALTHY else 200)

    return router
