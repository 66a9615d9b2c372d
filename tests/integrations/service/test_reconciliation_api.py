"""Reconciliation over HTTP (runbook 002 §2.4, §6.3, §7.2 Scenario 2, §10.2): drift made while Medplum's
write switch is off is found, enqueued and synced; cron needs the secret; bad input runs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import run_virtual
from integrations.sync import EncounterDetails, ObservationDetails
from tests.integrations.service.support import CRON, CRON_HEADERS, OP, OPERATOR, Svc, error_body, service

TOKEN = "pt_rec001"


async def drift(svc: Svc, n: int = 3) -> None:
    """`n` encounters and `n` observations written while sync is switched off: stored, never queued."""
    svc.patient(TOKEN)
    svc.wired.components.flags.update("medplum_fhir_write", False)
    store = svc.wired.store
    for _ in range(n):
        await store.create_encounter("org_demo", TOKEN, EncounterDetails())
        await store.create_observation("org_demo", TOKEN, ObservationDetails(code="8310-5", value=37.0, unit="Cel"))
    assert await svc.jobs() == 0
    svc.wired.components.flags.update("medplum_fhir_write", True)


def test_drift_is_found_enqueued_and_converges_in_one_run(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await drift(svc)
            stats = (await svc.http.get("/fhir/admin/reconciliation/stats", headers=OP)).json()
            assert stats == {"success": True, "stats": {
                "encounters": {"total": 3, "synced": 0, "notSynced": 3, "stale": 0},
                "observations": {"total": 3, "synced": 0, "notSynced": 3, "stale": 0}}}
            gauges = (await svc.http.get("/metrics", headers=OP)).text
            assert 'holi_fhir_sync_not_synced{resource_type="Encounter"} 3.0' in gauges

            response = await svc.http.post("/fhir/admin/reconciliation/run", headers=OP,
                                           json={"batchSize": 2, "staleDays": 1})
            assert response.status_code == 200
            result = response.json()["result"]
            assert set(result) == {"startTime", "endTime", "durationMs", "encounters", "observations", "errors"}
            assert result["encounters"] == {"total": 3, "notSynced": 3, "stale": 0, "enqueued": 3, "errors": 0}
            assert result["observations"]["enqueued"] == 3
            await svc.until_idle()
            stats = (await svc.http.get("/fhir/admin/reconciliation/stats", headers=OP)).json()["stats"]
            assert stats["encounters"] == {"total": 3, "synced": 3, "notSynced": 0, "stale": 0}
            assert stats["observations"]["synced"] == 3

            history = (await svc.http.get("/fhir/admin/reconciliation/history", params={"limit": 5},
                                          headers=OP)).json()
            assert history["count"] == 1
            assert history["runs"][0]["batchSize"] == 2
            samples = (await svc.http.get("/metrics", headers=OP)).text
            created = 'holi_fhir_sync_operations_total{operation="create",resource_type="Encounter",status="success"}'
            assert f"{created} 3.0" in samples
            assert 'holi_hipaa_audit_events_total{event_type="FHIR_SYNC",org_id="org_demo"} 6.0' in samples
            assert 'holi_hipaa_consent_validations_total{org_id="org_demo",status="granted"}' in samples

    run_virtual(main)


def test_cron_runs_with_the_secret_only(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            await drift(svc, 1)
            for headers in ({}, {"X-Cron-Secret": "wrong_secret"}, {"X-Cron-Secret": CRON[:-1]},
                            {"X-Cron-Secret": ""}, {"Authorization": f"Bearer {OPERATOR}"},
                            {"Authorization": f"Bearer {CRON}"}):
                error_body(await svc.http.post("/fhir/admin/reconciliation/cron", headers=headers,
                                               json={"staleDays": 1, "batchSize": 1000}), 403)
            assert svc.written().reconciliation_runs == 0
            assert await svc.jobs() == 0
            cron_as_bearer = {"Authorization": f"Bearer {CRON}"}
            error_body(await svc.http.post("/fhir/admin/reconciliation/run", headers=cron_as_bearer), 403,
                       "invalid_token")
            response = await svc.http.post("/fhir/admin/reconciliation/cron", headers=CRON_HEADERS,
                                           content=b'{"staleDays": 1, "batchSize": 1000}')  # curl -d, no JSON type
            assert response.status_code == 200
            assert response.json()["result"]["encounters"]["enqueued"] == 1
            assert svc.written().reconciliation_runs == 1

    run_virtual(main)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"staleDays": -1}, 422, "invalid_request"),
    ({"staleDays": 0}, 422, "invalid_request"),
    ({"batchSize": "1000"}, 422, "invalid_request"),
    ({"batchSize": 0}, 422, "invalid_request"),
    ({"batchSize": 1000, "dryRun": True}, 422, "invalid_request"),
    (b"{\"staleDays\": ", 400, "malformed_json"),
    (b"\"run\"", 422, "invalid_request"),
])
def test_bad_run_bodies_run_nothing(tmp_path: Path, body: object, status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            await drift(svc, 1)
            for path, headers in (("/fhir/admin/reconciliation/run", OP), ("/fhir/admin/reconciliation/cron",
                                                                            CRON_HEADERS)):
                content = body if isinstance(body, bytes) else None
                response = await svc.http.post(path, headers=headers, content=content,
                                               json=None if content is not None else body)
                error_body(response, status, code)
            assert svc.written().reconciliation_runs == 0
            assert await svc.jobs() == 0

    run_virtual(main)


@pytest.mark.parametrize(("path", "params"), [
    ("/fhir/admin/reconciliation/history", {"limit": 0}),
    ("/fhir/admin/reconciliation/history", {"limit": "ten"}),
    ("/fhir/admin/reconciliation/stats", {"orgId": "org demo"}),
])
def test_bad_query_parameters_are_422(tmp_path: Path, path: str, params: dict[str, object]) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            error_body(await svc.http.get(path, params=params, headers=OP), 422, "invalid_request")

    run_virtual(main)


@pytest.mark.parametrize(("method", "path"), [("GET", "/fhir/admin/reconciliation/stats"),
                                              ("GET", "/fhir/admin/reconciliation/history"),
                                              ("POST", "/fhir/admin/reconciliation/run")])
def test_operator_endpoints_need_the_token(tmp_path: Path, method: str, path: str) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            await drift(svc, 1)
            error_body(await svc.http.request(method, path), 401, "unauthenticated")
            error_body(await svc.http.request(method, path, headers={"Authorization": "Bearer x"}), 403)
            error_body(await svc.http.request(method, path, headers=CRON_HEADERS), 401)
            assert svc.written().reconciliation_runs == 0

    run_virtual(main)
