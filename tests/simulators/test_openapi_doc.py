"""The simulators' OpenAPI documents declare the FHIR writes' real bodies and answers
(`simulators.fhir.openapi_doc`), and the fuzz driver (`tests/openapi_fuzz.py`) fails where it must: a
response its document does not declare, a 5xx, and writes refused before their handler saw them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from harness.clock import run_virtual
from simulators.fhir.personality import DEFAULT_RESOURCE_TYPES
from simulators.transport import VirtualTransport
from tests.openapi_fuzz import NoChaos, _get_schema, fuzz_openapi, parse_rejected
from tests.simulators.support import make_medplum

FHIR_TYPES = {"application/fhir+json", "application/json"}


def _medplum_document() -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        return await _get_schema(VirtualTransport(make_medplum().app))

    return run_virtual(main)


def test_fhir_writes_declare_a_body_per_resource_type_and_operation_outcome_errors() -> None:
    doc = _medplum_document()
    paths = doc["paths"]
    schemas = doc["components"]["schemas"]
    for resource_type in DEFAULT_RESOURCE_TYPES:
        writes = ((f"/fhir/R4/{resource_type}", "post"), (f"/fhir/R4/{resource_type}/{{resource_id}}", "put"))
        for path, method in writes:
            content = paths[path][method]["requestBody"]["content"]
            assert set(content) == FHIR_TYPES, path
            ref = content["application/fhir+json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert schemas[ref]["properties"]["resourceType"] == {"const": resource_type}
            assert {"ETag", "Location"} <= set(paths[path][method]["responses"]["201"]["headers"])
    observation = schemas["FHIR_Observation"]
    assert {"resourceType", "status", "code"} <= set(observation["required"])  # what R4B requires
    patch = paths["/fhir/R4/{resource_type}/{resource_id}"]["patch"]["requestBody"]["content"]
    assert set(patch) == {"application/json-patch+json"}
    bundle = paths["/fhir/R4"]["post"]["requestBody"]["content"]["application/fhir+json"]["schema"]
    assert bundle["properties"]["type"] == {"enum": ["batch", "transaction"]}
    for path, item in paths.items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (method, path)  # FastAPI's shape: never sent
            assert "default" in operation["responses"], (method, path)
    read = paths["/fhir/R4/{resource_type}/{resource_id}"]["get"]["responses"]["default"]["content"]
    assert read["application/fhir+json"]["schema"] == {"$ref": "#/components/schemas/FHIR_OperationOutcome"}
    assert len(json.dumps(doc)) < 400_000  # compact schemas, declared once: not FHIR's megabytes


def _lying_app() -> FastAPI:
    """Declares a body and answers it does not keep to: every check must catch one of them."""
    app = FastAPI()
    declared = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}

    @app.post("/items", openapi_extra=declared,
              responses={200: {"content": {"application/json": {"schema": {"type": "object", "required": ["id"]}}}}})
    async def create(request: Request) -> Response:
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"detail": "Unsupported content type"}, status_code=415)
        body = await request.json()
        if body:
            return Response("boom", status_code=500)
        return JSONResponse({"no": "id"})  # the declared schema wants `id`

    @app.put("/items/{item_id}")
    async def update(item_id: str) -> Response:
        return JSONResponse({}, status_code=415)  # no body declared: refused unread, an undeclared status

    return app


def test_fuzz_driver_reports_violations_5xx_and_writes_refused_unread() -> None:
    result = fuzz_openapi(_lying_app(), NoChaos(), lambda path: None, max_examples=10)
    assert result.operations == 2
    text = "\n".join(result.failures)
    assert "Server error" in text, text
    assert "Response violates schema" in text, text
    assert "Undocumented status code" in text, text
    assert result.writes_parse_rejected >= 1, result.summary()
    assert result.write_share < 1.0, result.summary()


def test_parse_rejected_tells_refusals_while_reading_from_the_handlers_answers() -> None:
    assert parse_rejected(415, "")
    assert parse_rejected(400, '{"issue":[{"details":{"text":"Content could not be parsed"}}]}')
    assert parse_rejected(422, '{"success":false,"error":"invalid_request","detail":"limit: Input should be"}')
    assert not parse_rejected(400, '{"issue":[{"details":{"text":"Observation.status: Field required"}}]}')
    assert not parse_rejected(404, "Unsupported content type")
    assert not parse_rejected(422, '{"success":false,"error":"invalid_resource","detail":"x"}')
