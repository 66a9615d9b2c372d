"""Versions, ETags, If-Match, delete and history through the REST API, per personality."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx
import pytest

from simulators.fhir import FhirPersonality
from tests.fhir_core.support import BASE, PREFIX, Core, outcome_of, patient, run

HAPI_LIKE = FhirPersonality(name="hapi-like", stale_version_status=412, deleted_read_status=410)
CERNER_LIKE = FhirPersonality(name="cerner-like", stale_version_status=409, deleted_read_status=404,
                              first_version=0, put_create_status=200)


@pytest.mark.parametrize(("personality", "status", "code"), [(HAPI_LIKE, 412, "processing"),
                                                             (CERNER_LIKE, 409, "conflict")])
def test_stale_if_match_is_412_or_409_per_personality(personality: FhirPersonality, status: int, code: str) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        created = (await client.post("/Patient", json=patient())).json()
        pid, first = created["id"], created["meta"]["versionId"]
        updated = await client.put(f"/Patient/{pid}", json={**created, "gender": "male"},
                                   headers={"If-Match": f'W/"{first}"'})
        assert updated.status_code == 200
        stale = await client.put(f"/Patient/{pid}", json={**created, "gender": "other"},
                                 headers={"If-Match": f'W/"{first}"'})
        assert outcome_of(stale, status)["issue"][0]["code"] == code
        assert core.store.read("Patient", pid)["gender"] == "male"  # the stale write changed nothing
        stale_delete = await client.delete(f"/Patient/{pid}", headers={"If-Match": f'W/"{first}"'})
        outcome_of(stale_delete, status)

    run(scenario, personality)


def test_integer_versions_start_where_the_personality_says() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> list[str]:
        created = await client.post("/Patient", json=patient())
        body = created.json()
        updated = await client.put(f"/Patient/{body['id']}", json=body)
        return [created.headers["etag"], updated.headers["etag"]]

    assert run(scenario, CERNER_LIKE) == ['W/"0"', 'W/"1"']
    assert run(scenario, HAPI_LIKE) == ['W/"1"', 'W/"2"']


@pytest.mark.parametrize(("personality", "status", "code"), [(HAPI_LIKE, 410, "deleted"),
                                                             (CERNER_LIKE, 404, "not-found")])
def test_read_after_delete_is_410_or_404(personality: FhirPersonality, status: int, code: str) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient())).json()["id"]
        deleted = await client.delete(f"/Patient/{pid}")
        assert deleted.status_code == 200
        assert outcome_of(await client.get(f"/Patient/{pid}"), status)["issue"][0]["code"] == code
        assert (await client.delete(f"/Patient/{pid}")).status_code == 200  # delete is idempotent
        assert (await client.get("/Patient", params={"_id": pid})).json()["total"] == 0
        outcome_of(await client.delete("/Patient/never-was"), 404)

    run(scenario, personality)


def test_create_answers_201_with_location_etag_and_last_modified() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        await core.clock.sleep(61.5)
        created = await client.post("/Patient", json=patient(id="ignored"))
        assert created.status_code == 201
        body = created.json()
        assert body["id"] != "ignored"
        assert created.headers["location"] == f"{BASE}{PREFIX}/Patient/{body['id']}/_history/1"
        assert created.headers["etag"] == 'W/"1"'
        assert body["meta"]["lastUpdated"] == "2026-01-05T08:01:01.500Z"
        assert parsedate_to_datetime(created.headers["last-modified"]).isoformat() == "2026-01-05T08:01:01+00:00"
        read = await client.get(f"/Patient/{body['id']}")
        assert read.json() == body
        assert "location" not in read.headers

    run(scenario)


@pytest.mark.parametrize(("personality", "status"), [(HAPI_LIKE, 201), (CERNER_LIKE, 200)])
def test_put_to_a_new_id_creates_with_the_personality_status(personality: FhirPersonality, status: int) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        response = await client.put("/Patient/chosen-1", json=patient(id="chosen-1"))
        assert response.status_code == status
        assert core.store.read("Patient", "chosen-1")["meta"]["versionId"] == response.json()["meta"]["versionId"]
        outcome_of(await client.put("/Patient/bad id!", json=patient(id="bad id!")), 400)
        outcome_of(await client.put("/Patient/x-2", json=patient(id="x-3")), 400)

    run(scenario, personality)


def test_history_vread_and_prefer_minimal() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        body = (await client.post("/Patient", json=patient())).json()
        pid = body["id"]
        minimal = await client.put(f"/Patient/{pid}", json={**body, "gender": "male"},
                                   headers={"Prefer": "return=minimal"})
        assert minimal.status_code == 200
        assert minimal.content == b""
        assert minimal.headers["etag"] == 'W/"2"'
        await client.delete(f"/Patient/{pid}")
        history = (await client.get(f"/Patient/{pid}/_history")).json()
        assert history["type"] == "history"
        assert history["total"] == 3
        entries = history["entry"]
        assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]  # newest first
        assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
        assert "resource" not in entries[0]
        assert entries[1]["resource"]["gender"] == "male"
        first = await client.get(f"/Patient/{pid}/_history/1")
        assert first.status_code == 200
        assert first.json()["gender"] == "female"
        outcome_of(await client.get(f"/Patient/{pid}/_history/3"), 410)
        outcome_of(await client.get(f"/Patient/{pid}/_history/9"), 404)
        type_history = (await client.get("/Patient/_history")).json()
        assert type_history["total"] == 3
        system = (await client.get("/_history", params={"_since": "2026-01-05T08:00:00Z"})).json()
        assert system["total"] == 3

    run(scenario)


def test_every_interaction_reaches_the_hook_with_its_status() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient(), headers={"X-Client": "app-1"})).json()["id"]
        await client.get(f"/Patient/{pid}")
        await client.get("/Patient/nope")
        await client.get("/Patient", params={"_id": pid})
        refused = await client.get(f"/Patient/{pid}", headers={"X-Refuse": "403"})
        outcome_of(refused, 403)
        assert [(c[0], str(c[1]), c[2], c[4]) for c in core.calls] == [
            ("app-1", "create", "Patient", 201), ("tester", "read", "Patient", 200),
            ("tester", "read", "Patient", 404), ("tester", "search", "Patient", 200)]
        assert core.calls[1][3] == pid

    run(scenario)
