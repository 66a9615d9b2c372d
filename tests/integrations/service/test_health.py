"""Health endpoints (runbook 002_437ee203264dfa64.txt §8.2 shape) and a provider's health with
`fallback_active` (runbook 000_030ea53f0735abf7.txt §8 "Verify Fallback Active")."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.clock import VIRTUAL_EPOCH, run_virtual
from integrations.queue import QueueStats, SqliteStore, StoreUnavailable
from tests.integrations.service.support import OP, error_body, service


def test_health_has_the_runbook_shape_and_virtual_timestamp(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            response = await svc.http.get("/health")
            assert response.status_code == 200
            body = response.json()
            assert set(body) == {"status", "timestamp", "checks"}
            assert body["status"] == "healthy"
            assert body["checks"]["queue"] == "healthy"
            assert body["checks"]["medplum"] == "healthy"
            assert body["checks"]["database"] in {"healthy", "not_configured"}
            assert body["timestamp"].startswith(VIRTUAL_EPOCH.strftime("%Y-%m-%dT%H:%M"))
            assert body["timestamp"].endswith("Z")

    run_virtual(main)


def test_live_ready_and_startup(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            for path in ("/health/live", "/health/ready", "/health/startup"):
                response = await svc.http.get(path)
                assert response.status_code == 200, path
                assert response.json()["status"] == "healthy"
            svc.wired.components.startup.complete = False  # as before everything was started
            for path in ("/health/ready", "/health/startup"):
                response = await svc.http.get(path)
                assert response.status_code == 503, path
                assert response.json()["checks"]["startup"] == "starting"
            assert (await svc.http.get("/health/live")).status_code == 200

    run_virtual(main)


class _DownStore(SqliteStore):
    async def stats(self) -> QueueStats:
        raise StoreUnavailable("down", queue=self.queue, operation="stats")


def test_a_queue_store_that_is_down_makes_the_service_unhealthy(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            down = _DownStore(tmp_path / "down.db", "fhir-sync")
            svc.queue.store = down
            try:
                response = await svc.http.get("/health")
                assert response.status_code == 503
                assert response.json()["status"] == "unhealthy"
                assert response.json()["checks"]["queue"] == "unhealthy"
                assert (await svc.http.get("/health/ready")).status_code == 503
                error_body(await svc.http.get("/fhir/admin/queue/stats", headers=OP), 503, "queue_unavailable")
            finally:
                await down.close()

    run_virtual(main)


def test_vendor_health_shows_fallback_after_an_emergency_shutdown(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            response = await svc.http.get("/health/medplum")
            assert response.status_code == 200
            body = response.json()
            assert body["vendor"] == "medplum"
            assert body["fallback_active"] is False
            assert body["breaker_state"] == "CLOSED"
            assert body["status"] == "healthy"
            shutdown = {"updates": [{"feature": "medplum_fhir_read_only", "enabled": False},
                                    {"feature": "medplum_fhir_write", "enabled": False}]}
            assert (await svc.http.post("/api/admin/features/batch", json=shutdown, headers=OP)).status_code == 200
            body = (await svc.http.get("/health/medplum")).json()
            assert body["fallback_active"] is True
            assert body["status"] == "degraded"
            overall = (await svc.http.get("/health")).json()
            assert overall["status"] == "degraded"
            assert overall["checks"]["medplum"] == "degraded"

    run_virtual(main)


def test_an_open_breaker_makes_the_provider_unhealthy_and_the_service_degraded(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            svc.wired.vendor_client.breaker.force_open()
            response = await svc.http.get("/health/medplum")
            assert response.status_code == 503
            assert response.json()["status"] == "unhealthy"
            assert response.json()["fallback_active"] is True
            overall = await svc.http.get("/health")
            assert overall.status_code == 200  # writes are still accepted and queued
            assert overall.json()["status"] == "degraded"

    run_virtual(main)


def test_unknown_vendor_is_404_with_a_json_body(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            body = error_body(await svc.http.get("/health/meditech"), 404, "unknown_provider")
            assert "medplum" in str(body["detail"])

    run_virtual(main)


class _BrokenStore(SqliteStore):
    async def stats(self) -> QueueStats:
        raise RuntimeError("a bug, with a value pt_secret in its message")


def test_a_bug_is_a_json_500_without_its_message_and_is_counted(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            broken = _BrokenStore(tmp_path / "broken.db", "fhir-sync")
            original, svc.queue.store = svc.queue.store, broken
            try:
                transport = httpx.ASGITransport(app=svc.wired.app, raise_app_exceptions=False)
                async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
                    body = error_body(await http.get("/fhir/admin/queue/stats", headers=OP), 500, "internal_error")
                    assert "pt_secret" not in str(body)
            finally:
                svc.queue.store = original
                await broken.close()
            metrics = (await svc.http.get("/metrics", headers=OP)).text
            assert 'error_type="RuntimeError"' in metrics

    run_virtual(main)
