"""The service's OpenAPI document declares its real bodies and error shape, and the two bugs the declared
schemas exposed stay fixed: a huge `limit` to `/queue/clean` was a 500 (SQLite INTEGER overflow), and an
integer written `703.0` (a JSON Schema integer) was refused by the strict body models."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.clock import run_virtual
from integrations.service.bodies import CleanBody
from integrations.service.openapi_doc import ErrorBody
from tests.integrations.service.support import OP, error_body, service


def test_document_declares_bodies_and_the_error_body_that_is_really_sent(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            doc = (await svc.http.get("/openapi.json")).json()
            paths = doc["paths"]
            for path, method in (("/fhir/inbound/observation", "post"), ("/fhir/inbound/encounter", "post"),
                                 ("/fhir/inbound/batch", "post"), ("/api/admin/features", "post"),
                                 ("/api/admin/features/{flag}", "put"), ("/fhir/admin/queue/clean", "post"),
                                 ("/fhir/admin/reconciliation/run", "post"), ("/fhir/admin/audit-mirror/cron", "post")):
                assert "application/json" in paths[path][method]["requestBody"]["content"], (path, method)
            observation = paths["/fhir/inbound/observation"]["post"]["requestBody"]["content"]["application/json"]
            assert observation["schema"]["properties"]["resourceType"] == {"const": "Observation"}
            operation = paths["/api/admin/features/{flag}"]["put"]
            assert "422" not in operation["responses"]  # FastAPI's HTTPValidationError is never sent
            schema = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert schema["required"] == ["success", "error", "detail"]
            response = await svc.http.put("/api/admin/features/x", json={"enabled": "yes"}, headers=OP)
            ErrorBody.model_validate(error_body(response, 422, "invalid_request"))  # what is sent is what is declared
            with pytest.raises(ValidationError):  # FastAPI's HTTPValidationError shape is not
                ErrorBody.model_validate({"detail": [{"loc": ["body"], "msg": "x", "type": "t"}]})

    run_virtual(main)


def test_huge_clean_limit_is_refused_not_a_server_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            response = await svc.http.post("/fhir/admin/queue/clean", headers=OP,
                                           json={"state": "completed", "limit": 10 ** 19})
            error_body(response, 422, "invalid_request")
            response = await svc.http.post("/fhir/admin/queue/clean", headers=OP,
                                           json={"state": "completed", "graceSeconds": 1e16})
            error_body(response, 422, "invalid_request")
            response = await svc.http.post("/fhir/admin/queue/clean", headers=OP,
                                           json={"state": "completed", "limit": 703.0})
            assert response.status_code == 200, response.text

    run_virtual(main)


def test_integral_floats_are_integers_but_nothing_else_is() -> None:
    assert CleanBody.model_validate({"state": "failed", "limit": 703.0}).limit == 703
    for refused in (703.5, "703", True, 1e300, 0.0):
        with pytest.raises(ValidationError):
            CleanBody.model_validate({"state": "failed", "limit": refused})
