"""Medplum's FHIR API: CRUD, If-Match, search, errors, healthcheck (reference/vendors.md §3)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import pytest

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from simulators.medplum import MedplumSimulator
from tests.simulators.support import BASE_URL, bearer, client_for, get_token, make_medplum, patient

T = TypeVar("T")
Scenario = Callable[[MedplumSimulator, httpx.AsyncClient, dict[str, str]], Awaitable[T]]

PRECONDITION_FAILED = {"resourceType": "OperationOutcome", "id": "precondition-failed",
                       "issue": [{"severity": "error", "code": "processing",
                                  "details": {"text": "Precondition Failed"}}]}


def run(scenario: Scenario[T], *, base_url: str = BASE_URL, clock: VirtualClock | None = None) -> T:
    async def main() -> T:
        sim = make_medplum(clock=clock)
        async with client_for(sim, base_url) as client:
            return await scenario(sim, client, bearer(await get_token(client)))

    return run_virtual(main)


def _invalid(response: httpx.Response, text: str | None = None) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"
    if text is not None:
        assert outcome["issue"][0]["details"]["text"] == text


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    outcome = response.json()
    assert outcome["id"] == "not-found"
    assert outcome["issue"][0]["code"] == "not-found"


def test_create_then_read() -> None:
    clock = VirtualClock()

    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        await clock.sleep(90.25)
        created = await client.post("/fhir/R4/Patient", json=patient(id="client-chosen"), headers=auth)
        assert created.status_code == 201
        assert created.headers["content-type"] == "application/fhir+json; charset=utf-8"
        body = created.json()
        pid, version = body["id"], body["meta"]["versionId"]
        assert pid != "client-chosen"  # the server assigns ids on create
        assert created.headers["location"] == f"{BASE_URL}/fhir/R4/Patient/{pid}"
        assert created.headers["etag"] == f'W/"{version}"'
        assert body["meta"]["lastUpdated"] == "2026-01-05T08:01:30.250Z"
        assert parsedate_to_datetime(created.headers["last-modified"]) == VIRTUAL_EPOCH + timedelta(seconds=90)
        read = await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
        assert read.status_code == 200
        assert read.headers["etag"] == f'W/"{version}"'
        assert read.json() == body
        assert "location" not in read.headers

    run(scenario, clock=clock)


def test_version_ids_are_uuids() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> str:
        observation = {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"}}
        created = await client.post("/fhir/R4/Observation", headers=auth, json=observation)
        return str(created.json()["meta"]["versionId"])

    assert uuid.UUID(run(scenario)).version == 4


def test_read_unknown_id_is_404() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await client.get("/fhir/R4/Encounter/does-not-exist", headers=auth)

    _not_found(run(scenario))


@pytest.mark.parametrize(("method", "path"), [("GET", "/fhir/R4/Condition/1"), ("GET", "/fhir/R4/Spaceship"),
                                              ("POST", "/fhir/R4/Spaceship"), ("GET", "/fhir/R4/Patient/1/_history"),
                                              ("DELETE", "/fhir/R4/Patient/1"), ("GET", "/fhir/R4/Patient/1/$wat"),
                                              ("GET", "/fhir/R4/metadata/x")])
def test_unknown_types_and_interactions_are_404(method: str, path: str) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await client.request(method, path, headers=auth, json={"resourceType": "Medication"})

    _not_found(run(scenario))


@pytest.mark.parametrize("if_match", ['W/"{v}"', '"{v}"'])
def test_update_with_if_match(if_match: str) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        created = (await client.post("/fhir/R4/Patient", json=patient(), headers=auth)).json()
        pid, v1 = created["id"], created["meta"]["versionId"]
        changed = {**created, "gender": "other"}
        updated = await client.put(f"/fhir/R4/Patient/{pid}", json=changed,
                                   headers={**auth, "If-Match": if_match.format(v=v1)})
        assert updated.status_code == 200, updated.text
        v2 = updated.json()["meta"]["versionId"]
        assert v2 != v1
        assert updated.headers["etag"] == f'W/"{v2}"'
        assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).json()["gender"] == "other"
        stale = await client.put(f"/fhir/R4/Patient/{pid}", json=created,
                                 headers={**auth, "If-Match": if_match.format(v=v1)})
        assert stale.status_code == 412
        assert stale.json() == PRECONDITION_FAILED
        assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).json()["meta"]["versionId"] == v2

    run(scenario)


def test_update_without_if_match_or_with_an_unquoted_one_is_unconditional() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> list[int]:
        created = (await client.post("/fhir/R4/Patient", json=patient(), headers=auth)).json()
        url = f"/fhir/R4/Patient/{created['id']}"
        plain = await client.put(url, json=created, headers=auth)
        unquoted = await client.put(url, json=created, headers={**auth, "If-Match": "stale-version"})
        return [plain.status_code, unquoted.status_code]

    assert run(scenario) == [200, 200]


def test_put_to_a_new_id_creates() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        response = await client.put("/fhir/R4/Patient/new-patient-1", json=patient(id="new-patient-1"), headers=auth)
        assert response.status_code == 201
        assert response.headers["location"] == f"{BASE_URL}/fhir/R4/Patient/new-patient-1"
        assert (await client.get("/fhir/R4/Patient/new-patient-1", headers=auth)).status_code == 200
        conditional = await client.put("/fhir/R4/Patient/new-patient-2", json=patient(id="new-patient-2"),
                                       headers={**auth, "If-Match": 'W/"x"'})
        _not_found(conditional)

    run(scenario)


@pytest.mark.parametrize(("path", "body", "text"), [
    ("/fhir/R4/Patient/p1", {"resourceType": "Observation", "id": "p1"},
     "Incorrect resource type: expected Patient, but found Observation"),
    ("/fhir/R4/Patient/p1", {"resourceType": "Patient", "id": "p2"}, "Incorrect ID"),
    ("/fhir/R4/Patient/p1", {"resourceType": "Patient"}, "Incorrect ID"),
    ("/fhir/R4/Patient/p1", [], "Request body must be a JSON object"),
])
def test_update_mismatches_are_400(path: str, body: object, text: str) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        response = await client.put(path, json=body, headers=auth)
        assert sim.store.count("Patient") == 0
        return response

    _invalid(run(scenario), text)


@pytest.mark.parametrize(("content", "content_type", "text"), [
    (b"{not json", "application/fhir+json", "Content could not be parsed"),
    (b'"just a string"', "application/json", "Content could not be parsed"),
    (b'{"resourceType": "Patient", "x": NaN}', "application/json", "Content could not be parsed"),
    (b"", "application/fhir+json", "Request body is empty"),
    (b"[]", "application/fhir+json", "Request body must be a JSON object"),
    (b'{"resourceType": "Observation", "status": "final"}', "application/fhir+json",
     "Incorrect resource type: expected Patient, but found Observation"),
    (b"\xff\xfe", "application/json", "Content could not be parsed"),
])
def test_unparsable_or_mismatched_create_bodies_are_400(content: bytes, content_type: str, text: str) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await client.post("/fhir/R4/Patient", content=content, headers={**auth, "Content-Type": content_type})

    _invalid(run(scenario), text)


@pytest.mark.parametrize(("path", "body", "expression"), [
    ("/fhir/R4/Observation", {"resourceType": "Observation", "status": "final"}, "Observation.code"),
    ("/fhir/R4/Patient", {"resourceType": "Patient", "birthDate": "yesterday"}, "Patient.birthDate"),
    ("/fhir/R4/Patient", {"resourceType": "Patient", "favouriteColour": "blue"}, "Patient.favouriteColour"),
    ("/fhir/R4/Patient", {"resourceType": "Patient", "meta": "v1"}, "meta"),
])
def test_invalid_resources_are_400(path: str, body: dict[str, Any], expression: str) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        response = await client.post(path, json=body, headers=auth)
        assert sim.store.count(body["resourceType"]) == 0
        return response

    response = run(scenario)
    _invalid(response)
    assert expression in response.json()["issue"][0]["expression"]
    assert "blue" not in response.text  # validation messages never echo values


def test_invalid_update_is_400_and_keeps_the_old_version() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        created = (await client.post("/fhir/R4/Patient", json=patient(), headers=auth)).json()
        response = await client.put(f"/fhir/R4/Patient/{created['id']}", json={**created, "birthDate": "13/13/13"},
                                    headers=auth)
        _invalid(response)
        assert (await client.get(f"/fhir/R4/Patient/{created['id']}", headers=auth)).json() == created

    run(scenario)


def test_search_by_id() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        a, b, c = sim.seed_patients(3)
        response = await client.get("/fhir/R4/Patient", params={"_id": f"{c},{a},missing"}, headers=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 2
        assert [e["resource"]["id"] for e in bundle["entry"]] == [a, c]  # store order, not request order
        assert [e["fullUrl"] for e in bundle["entry"]] == [f"http://fhir.example:8080/fhir/R4/Patient/{x}"
                                                           for x in (a, c)]
        assert bundle["link"] == [{"relation": "self",
                                   "url": f"http://fhir.example:8080/fhir/R4/Patient?_id={c}%2C{a}%2Cmissing&_count=20"}]
        assert b not in response.text

    run(scenario, base_url="http://fhir.example:8080")


def test_search_without_match_has_no_entries_and_all_with_count() -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        ids = sim.seed_patients(4)
        empty = (await client.get("/fhir/R4/Patient", params={"_id": "nope"}, headers=auth)).json()
        assert empty["total"] == 0
        assert "entry" not in empty  # FHIR JSON has no empty arrays
        both = (await client.get("/fhir/R4/Patient", params=[("_id", f"{ids[0]},{ids[1]}"), ("_id", ids[1])],
                                 headers=auth)).json()
        assert [e["resource"]["id"] for e in both["entry"]] == [ids[1]]  # repeated _id is AND
        everything = (await client.get("/fhir/R4/Patient", params={"_count": "2"}, headers=auth)).json()
        assert everything["total"] == 4
        assert [e["resource"]["id"] for e in everything["entry"]] == ids[:2]

    run(scenario)


@pytest.mark.parametrize("params", [{"favourite-colour": "blue"}, {"_count": "-1"}, {"_count": "many"},
                                    {"birthdate": "yesterday"}, {"name:fuzzy": "Doe"}, {"_sort": "colour"}])
def test_unsupported_search_parameters_are_400(params: dict[str, str]) -> None:
    async def scenario(sim: MedplumSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await client.get("/fhir/R4/Patient", params=params, headers=auth)

    _invalid(run(scenario))


def test_healthcheck() -> None:
    async def main() -> httpx.Response:
        async with client_for(make_medplum()) as client:
            return await client.get("/healthcheck")

    response = run_virtual(main)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["postgres"] is True
    assert body["redis"] is True
    assert {"version", "platform", "runtime"} <= set(body)


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/healthcheck", 405)])
def test_errors_outside_routes_are_operation_outcomes(method: str, path: str, status: int) -> None:
    async def main() -> httpx.Response:
        async with client_for(make_medplum()) as client:
            return await client.request(method, path)

    response = run_virtual(main)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_seeded_patients_are_valid_and_varied() -> None:
    async def main() -> list[dict[str, Any]]:
        sim = make_medplum()
        return [sim.store.read("Patient", pid) for pid in sim.seed_patients(20)]

    patients = run_virtual(main)
    assert len({p["id"] for p in patients}) == 20
    assert {p["gender"] for p in patients} == {"female", "male"}
    assert len({p["name"][0]["family"] for p in patients}) > 5
    assert all(p["birthDate"] < "2026-01-05" for p in patients)
    assert json.dumps(patients).count('"given"') == 20
