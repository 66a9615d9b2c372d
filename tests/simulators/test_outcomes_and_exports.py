"""OperationOutcome error rendering outside OutcomeRoute, and the packages' public names."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import simulators.fhir
import simulators.medplum
from harness.clock import run_virtual
from simulators.fhir import install_outcome_handlers
from simulators.transport import VirtualTransport


def test_app_level_validation_errors_are_400_operation_outcomes() -> None:
    app = FastAPI()
    install_outcome_handlers(app)

    @app.get("/items/{item_id}")
    async def item(item_id: int, limit: int = 10) -> JSONResponse:
        return JSONResponse({"id": item_id, "limit": limit})

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=VirtualTransport(app), base_url="http://x.test") as client:
            return [await client.get("/items/abc"), await client.get("/items/1", params={"limit": "many"}),
                    await client.get("/items/1")]

    bad_path, bad_query, ok = run_virtual(main)
    for response in (bad_path, bad_query):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/fhir+json")
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "invalid"
        assert "many" not in response.text  # values are not echoed
        assert "abc" not in response.text
    assert bad_query.json()["issue"][0]["expression"] == ["query.limit"]
    assert ok.json() == {"id": 1, "limit": 10}


def test_public_names() -> None:
    assert set(simulators.medplum.__all__) == {
        "MedplumSettings", "MedplumSimulator", "create_medplum", "medplum_personality"}
    assert {"ResourceStore", "OutcomeError", "OutcomeRoute", "operation_outcome", "validate_resource",
            "uuid_versions", "integer_versions"} <= set(simulators.fhir.__all__)
    for module in (simulators.fhir, simulators.medplum):
        for name in module.__all__:
            assert getattr(module, name) is not None
