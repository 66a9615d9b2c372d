"""The CapabilityStatement tells what the personality supports; seeded data is valid and reproducible."""

from __future__ import annotations

import json
import random

import httpx
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from harness.clock import VirtualClock, run_virtual
from simulators.fhir import FhirPersonality, Population, ResourceStore, seed_population, store_for
from simulators.fhir.validation import validate_resource
from tests.fhir_core.support import Core, run

SMART = {"token_endpoint": "{server}/oauth2/token", "authorization_endpoint": "{server}/oauth2/authorize",
         "issuer": "{base}", "capabilities": ["permission-v1"]}
READ_ONLY = FhirPersonality(name="ro", read_only=True, supports_export=False, supports_history=False,
                            software_name="Veradigm", software_version="22.3", resource_types=("Patient",))


def test_capability_statement_follows_the_personality() -> None:
    async def full(core: Core, client: httpx.AsyncClient) -> dict[str, object]:
        return dict((await client.get("/metadata")).json())

    statement = run(full, FhirPersonality(name="smart", smart_configuration=SMART), base_url="http://h:8080")
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]  # type: ignore[index]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "create", "update", "delete", "patch", "history-instance"} <= codes
    assert {p["name"] for p in patient["searchParam"]} >= {"_id", "identifier", "birthdate", "family"}
    assert {o["name"] for o in patient["operation"]} == {"everything", "export"}
    uris = rest["security"]["extension"][0]["extension"]
    assert {u["url"]: u["valueUri"] for u in uris}["token"] == "http://h:8080/oauth2/token"

    statement = run(full, READ_ONLY)
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]  # type: ignore[index]
    assert [r["type"] for r in rest["resource"]] == ["Patient"]
    assert {i["code"] for i in rest["resource"][0]["interaction"]} == {"read", "search-type"}
    assert "operation" not in rest
    assert statement["software"] == {"name": "Veradigm", "version": "22.3"}


def test_smart_configuration_uses_the_requests_host() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/.well-known/smart-configuration")

    response = run(scenario, FhirPersonality(name="smart", smart_configuration=SMART), base_url="http://p:9")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"token_endpoint": "http://p:9/oauth2/token",
                               "authorization_endpoint": "http://p:9/oauth2/authorize", "issuer": "http://p:9/fhir",
                               "capabilities": ["permission-v1"]}
    assert run(scenario).status_code == 404


def _seeded(seed: int, patients: int = 6) -> tuple[ResourceStore, Population]:
    async def main() -> tuple[ResourceStore, Population]:
        store = store_for(FhirPersonality(name="x"), VirtualClock(), random.Random(1))
        return store, seed_population(store, random.Random(seed), VirtualClock(), patients)

    return run_virtual(main)


def test_seed_population_is_valid_linked_and_reproducible() -> None:
    store, population = _seeded(42)
    again, _ = _seeded(42)
    other, _ = _seeded(43)
    dump = json.dumps(list(store), sort_keys=True)
    assert dump == json.dumps(list(again), sort_keys=True)
    assert dump != json.dumps(list(other), sort_keys=True)
    assert len(population.patients) == 6
    assert population.resource_count() == sum(store.count(t) for t in store.types())
    for resource in store:
        validate_resource(resource)
    for seeded in population.patients:
        assert seeded.encounters
        for observation_id in seeded.observations:
            assert store.read("Observation", observation_id)["subject"] == {"reference": f"Patient/{seeded.id}"}
    assert {store.read("Patient", p)["gender"] for p in population.patient_ids} <= {"female", "male"}
    assert store.count("Condition") + store.count("MedicationRequest") > 0
    empty, nobody = _seeded(1, patients=0)
    assert nobody.patient_ids == []
    assert list(empty) == []
