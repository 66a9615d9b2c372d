"""Batch and transaction Bundles: independent entries vs all-or-nothing, urn:uuid references, order."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.fhir_core.support import Core, observation, outcome_of, patient, run


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource,
                             "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def test_transaction_creates_and_resolves_urn_references() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        urn = "urn:uuid:8c1a3f2e-0000-4000-8000-000000000001"
        obs = observation("placeholder")
        obs["subject"] = {"reference": urn}
        response = await client.post("", json=_bundle("transaction", _post(obs), _post(patient(), urn)))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "transaction-response"
        statuses = [e["response"]["status"] for e in body["entry"]]
        assert statuses == ["201 Created", "201 Created"]
        observation_id = body["entry"][0]["resource"]["id"]
        patient_id = body["entry"][1]["resource"]["id"]
        stored = core.store.read("Observation", observation_id)
        assert stored["subject"] == {"reference": f"Patient/{patient_id}"}
        assert body["entry"][1]["response"]["location"].startswith(f"Patient/{patient_id}/_history/")

    run(scenario)


def test_transaction_rolls_back_everything_when_one_entry_fails() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        existing = (await client.post("/Patient", json=patient())).json()
        before = core.store.history("Patient", existing["id"])
        bundle = _bundle(
            "transaction",
            _post(patient(gender="male")),
            {"resource": {**existing, "gender": "other"},
             "request": {"method": "PUT", "url": f"Patient/{existing['id']}"}},
            {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
            _post({"resourceType": "Observation", "status": "final"}),  # invalid: no code
        )
        response = await client.post("/", json=bundle)
        outcome_of(response, 400)
        assert core.store.count("Patient") == 1
        assert core.store.count("Observation") == 0
        assert core.store.read("Patient", existing["id"]) == existing
        assert core.store.history("Patient", existing["id"]) == before

    run(scenario)


def test_batch_entries_fail_on_their_own() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient())).json()["id"]
        bundle = _bundle(
            "batch",
            {"request": {"method": "GET", "url": f"Patient/{pid}"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            _post(patient(gender="male")),
            {"request": {"method": "GET", "url": "Patient?gender=male"}},
            _post({"resourceType": "Patient", "gender": 7}),
        )
        body = (await client.post("", json=bundle)).json()
        assert body["type"] == "batch-response"
        assert [e["response"]["status"][:3] for e in body["entry"]] == ["200", "404", "201", "200", "400"]
        assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert body["entry"][3]["resource"]["total"] == 1
        assert core.store.count("Patient") == 2

    run(scenario)


def test_patch_entries_and_bad_bundles() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient())).json()["id"]
        ops = [{"op": "replace", "path": "/gender", "value": "other"}]
        binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
                  "data": base64.b64encode(json.dumps(ops).encode()).decode()}
        patched = await client.post("", json=_bundle("transaction", {
            "resource": binary, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}))
        assert patched.status_code == 200, patched.text
        assert core.store.read("Patient", pid)["gender"] == "other"
        for bad in ({"resourceType": "Bundle", "type": "collection"}, {"resourceType": "Patient"},
                    _bundle("batch", {"request": {"method": "FETCH", "url": "Patient"}}),
                    _bundle("transaction", {"request": {"method": "GET", "url": "http://evil.example/Patient"}}),
                    {"resourceType": "Bundle", "type": "batch", "entry": "many"}):
            response = await client.post("", json=bad)
            if bad.get("type") == "batch" and isinstance(bad.get("entry"), list):
                assert response.json()["entry"][0]["response"]["status"].startswith("400")
            else:
                outcome_of(response, 400)

    run(scenario)
