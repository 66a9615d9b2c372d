"""Every operator endpoint needs the operator's bearer token (401 without, 403 wrong); nothing is done
for a caller refused. Health endpoints are open, as probes are."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import run_virtual
from integrations.service.config import ApiClient, ServiceConfig
from tests.integrations.service.support import API_KEY, CRON, OP, OPERATOR, error_body, service

OPERATOR_ENDPOINTS = [
    ("GET", "/api/admin/provider-status"),
    ("GET", "/api/admin/features"),
    ("POST", "/api/admin/features"),
    ("POST", "/api/admin/features/batch"),
    ("GET", "/api/admin/features/medplum_fhir_write"),
    ("PUT", "/api/admin/features/medplum_fhir_write"),
    ("GET", "/fhir/admin/queue/stats"),
    ("GET", "/fhir/admin/queue/failed"),
    ("POST", "/fhir/admin/queue/retry/some-job"),
    ("POST", "/fhir/admin/queue/clean"),
    ("POST", "/fhir/admin/queue/pause"),
    ("POST", "/fhir/admin/queue/resume"),
    ("GET", "/fhir/admin/reconciliation/stats"),
    ("GET", "/fhir/admin/reconciliation/history"),
    ("POST", "/fhir/admin/reconciliation/run"),
    ("GET", "/fhir/admin/audit-mirror/stats"),
    ("POST", "/fhir/admin/audit-mirror/run"),
    ("GET", "/fhir/admin/audit-mirror/search"),
    ("GET", "/fhir/export/exports"),
    ("GET", "/metrics"),
    ("GET", "/metrics/json"),
]

BAD_CREDENTIALS = [
    ({}, 401, "unauthenticated"),
    ({"Authorization": f"Basic {OPERATOR}"}, 401, "unauthenticated"),
    ({"Authorization": "Bearer "}, 401, "unauthenticated"),
    ({"Authorization": "Bearer wrong-token"}, 403, "invalid_token"),
    ({"Authorization": f"Bearer {OPERATOR[:-1]}"}, 403, "invalid_token"),
    ({"Authorization": f"Bearer {CRON}"}, 403, "invalid_token"),  # the cron secret is not an operator token
    ({"Authorization": f"Bearer {API_KEY}"}, 403, "invalid_token"),  # nor is an API key
    ({"X-Cron-Secret": CRON}, 401, "unauthenticated"),
]


@pytest.mark.parametrize(("method", "path"), OPERATOR_ENDPOINTS)
def test_operator_endpoints_refuse_missing_and_wrong_tokens(tmp_path: Path, method: str, path: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            body = {"updates": [{"feature": "medplum_fhir_write", "enabled": False}]} if "batch" in path \
                else {"feature": "medplum_fhir_write", "enabled": False} if path.endswith("features") \
                else {"enabled": False}
            for headers, status, code in BAD_CREDENTIALS:
                response = await svc.http.request(method, path, headers=headers, json=body)
                error_body(response, status, code)
                if status == 401:
                    assert response.headers["www-authenticate"] == "Bearer"
            assert svc.wired.components.flags.is_enabled("medplum_fhir_write")
            assert not await svc.queue.is_paused()

    run_virtual(main)


def test_health_endpoints_need_no_token(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            for path in ("/health", "/health/live", "/health/ready", "/health/startup", "/health/medplum"):
                assert (await svc.http.get(path)).status_code == 200, path

    run_virtual(main)


def test_unknown_routes_and_methods_answer_json(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            error_body(await svc.http.get("/nope"), 404, "not_found")
            error_body(await svc.http.delete("/fhir/admin/queue/stats", headers=OP), 405, "method_not_allowed")

    run_virtual(main)


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"operator_token": "short", "cron_secret": CRON}, "operator_token"),
    ({"operator_token": OPERATOR, "cron_secret": "short"}, "cron_secret"),
    ({"operator_token": OPERATOR, "cron_secret": OPERATOR}, "differ"),
    ({"operator_token": OPERATOR, "cron_secret": CRON,
      "api_keys": {OPERATOR: ApiClient("x", frozenset({"org"}))}}, "API key"),
    ({"operator_token": OPERATOR, "cron_secret": CRON, "api_keys": {"k": ApiClient("x", frozenset({"org"}))}},
     "API keys"),
])
def test_config_refuses_weak_or_shared_secrets(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ServiceConfig(**kwargs)  # type: ignore[arg-type]


def test_config_repr_shows_no_secret() -> None:
    config = ServiceConfig(operator_token=OPERATOR, cron_secret=CRON,
                           api_keys={API_KEY: ApiClient("ehr", frozenset({"org"}))})
    text = repr(config)
    assert OPERATOR not in text
    assert CRON not in text
    assert API_KEY not in text
