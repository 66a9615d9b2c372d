"""Allscripts contract tests (reference/vendors.md §4): Unity API and the read-only FHIR base."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock
from tests.vendors.keys import CLIENT_ID
from tests.vendors.support import (
    ADMIN,
    ALLSCRIPTS_URL,
    APPNAME,
    SECRET,
    UNITY,
    allscripts_token,
    bearer,
    client_for,
    magic,
    make_allscripts,
    patient,
    unity_token,
    virtual,
)


def _unity(steps: Any, **settings: Any) -> Any:
    """Run `steps(client, sim, clock)` against a fresh Allscripts simulator with 3 seeded patients."""

    async def main(clock: VirtualClock) -> Any:
        sim = make_allscripts(clock, **settings)
        sim.seed_patients(3)
        async with client_for(sim.app, ALLSCRIPTS_URL) as client:
            return await steps(client, sim, clock)

    return virtual(main)


def _error(rows: Any) -> str:
    assert isinstance(rows, list)
    assert len(rows) == 1
    assert set(rows[0]) == {"Error"}
    return str(rows[0]["Error"])


def test_get_token_returns_a_raw_token_string() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> httpx.Response:
        return await client.post(f"{UNITY}/GetToken", json={"Username": CLIENT_ID, "Password": SECRET,
                                                             "Appname": APPNAME})

    response = _unity(steps)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip() == response.text
    assert len(response.text) >= 32
    assert not response.text.startswith(("[", "{", '"'))


@pytest.mark.parametrize("body", [
    {"Username": CLIENT_ID, "Password": "wrong", "Appname": APPNAME},
    {"Username": "nobody", "Password": SECRET, "Appname": APPNAME},
    {"Username": CLIENT_ID, "Password": SECRET, "Appname": "unlicensed"},
    {"Username": CLIENT_ID, "Appname": APPNAME},
])
def test_get_token_errors_come_in_a_200_body_containing_error(body: dict[str, str]) -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> httpx.Response:
        return await client.post(f"{UNITY}/GetToken", json=body)

    response = _unity(steps)
    assert response.status_code == 200
    assert response.text.startswith("error:")


def test_magic_actions_read_the_shared_store() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> tuple[Any, ...]:
        token = await unity_token(client)
        pid = sim.store.search("Patient")[0]["id"]
        stored = sim.store.read("Patient", pid)
        info = await magic(client, token, "GetServerInfo")
        got = await magic(client, token, "GetPatient", PatientID=pid)
        found = await magic(client, token, "SearchPatients", Parameter1=stored["name"][0]["family"][:3])
        encounters = await magic(client, token, "GetEncounterList", PatientID=pid)
        return stored, info, got, found, encounters, sim.store.search(
            "Encounter", where=lambda r: r.get("subject", {}).get("reference") == f"Patient/{pid}")

    stored, info, got, found, encounters, stored_encounters = _unity(steps)
    assert list(info[0]) == ["getserverinfoinfo"]
    assert info[0]["getserverinfoinfo"][0]["ServerTime"] == "2026-01-05T08:00:00"
    [row] = got[0]["getpatientinfo"]
    assert row["ID"] == stored["id"]
    assert row["LastName"] == stored["name"][0]["family"]
    assert row["FirstName"] == stored["name"][0]["given"][0]
    assert row["Sex"] == {"female": "F", "male": "M"}[stored["gender"]]
    assert stored["id"] in [r["ID"] for r in found[0]["searchpatientsinfo"]]
    assert sorted(r["ID"] for r in encounters[0]["getencounterlistinfo"]) == sorted(e["id"] for e in stored_encounters)


@pytest.mark.parametrize(("action", "fields", "message"), [
    ("GetChartItemDetails", {}, "Unknown or unsupported action"),
    ("GetPatient", {}, "PatientID is required"),
    ("GetPatient", {"PatientID": "no-such-patient"}, "Patient not found"),
    ("SearchPatients", {}, "Parameter1 (search string) is required"),
    ("GetServerInfo", {"Appname": "someone-else"}, "Appname does not match"),
])
def test_magic_errors_are_carried_in_200_bodies(action: str, fields: dict[str, str], message: str) -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> Any:
        return await magic(client, await unity_token(client), action, **fields)

    error = _error(_unity(steps))
    assert error.startswith(f"Magic Error - Action: {action} - ")
    assert message in error


def test_a_retired_an_expired_and_a_forged_token_all_fail_in_200_bodies() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[Any]:
        results = []
        retired = await unity_token(client)
        done = await client.post(f"{UNITY}/RetireSecurityToken", json={"Token": retired, "Appname": APPNAME})
        results.append((done.status_code, done.text))
        results.append(await magic(client, retired, "GetServerInfo"))
        expiring = await unity_token(client)
        results.append(await magic(client, expiring, "GetServerInfo"))
        await clock.sleep(1200)
        results.append(await magic(client, expiring, "GetServerInfo"))
        results.append(await magic(client, "forged-token", "GetServerInfo"))
        return results

    retire, after_retire, live, after_expiry, forged = _unity(steps)
    assert retire == (200, '<RetireSecurityTokenResponse xmlns="http://www.allscripts.com/Unity"/>')
    assert "security token" in _error(after_retire)
    assert "getserverinfoinfo" in live[0]
    assert "security token" in _error(after_expiry)
    assert "security token" in _error(forged)


def test_a_body_that_is_not_json_is_400_not_a_5xx() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[int]:
        return [(await client.post(f"{UNITY}/{path}", content=b"{not json")).status_code
                for path in ("GetToken", "MagicJson", "RetireSecurityToken")]

    assert _unity(steps) == [400, 400, 400]


def test_forced_expiry_through_the_admin_api_ends_unity_sessions_too() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> tuple[Any, Any]:
        token = await unity_token(client)
        before = await magic(client, token, "GetServerInfo")
        assert (await client.post("/admin/tokens/expire", json={}, headers=ADMIN)).status_code == 200
        return before, await magic(client, token, "GetServerInfo")

    before, after = _unity(steps)
    assert "getserverinfoinfo" in before[0]
    assert "security token" in _error(after)


def test_the_fhir_token_endpoint_takes_the_secret_in_the_form_and_lasts_1200_s() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[httpx.Response]:
        url = "/authorization/connect/token"
        good = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
        return [await client.post(url, data=good),
                await client.post(url, data={**good, "client_secret": "wrong"}),
                await client.post(url, data={"grant_type": "client_credentials"},
                                  headers={"Authorization": "Basic ZWhybGFiOnNlY3JldA=="}),
                await client.post(url, data={**good, "grant_type": "password"}),
                await client.post(url, data={**good, "scope": "system/Patient.write"})]

    ok, wrong, basic_only, grant, scope = _unity(steps)
    assert ok.status_code == 200
    assert ok.json()["expires_in"] == 1200
    assert ok.json()["token_type"] == "Bearer"
    assert [r.json() for r in (wrong, basic_only, grant, scope)] == [
        {"error": "invalid_client"}, {"error": "invalid_client"}, {"error": "unsupported_grant_type"},
        {"error": "invalid_scope"}]
    assert {r.status_code for r in (wrong, basic_only, grant, scope)} == {400}


def test_fhir_is_read_only_even_for_a_client_with_write_scopes() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[httpx.Response]:
        pid = sim.store.search("Patient")[0]["id"]
        auth = bearer(await allscripts_token(client))
        current = (await client.get(f"/FHIR/Patient/{pid}", headers=auth)).json()
        return [await client.get(f"/FHIR/Patient/{pid}", headers=auth),
                await client.post("/FHIR/Patient", json=patient(), headers=auth),
                await client.put(f"/FHIR/Patient/{pid}", json=current, headers=auth)]

    read, create, update = _unity(steps, scopes=("system/*.cruds",))
    assert read.status_code == 200
    assert create.status_code == 405
    assert create.json()["resourceType"] == "OperationOutcome"
    assert update.status_code == 405


def test_scopes_are_enforced_on_fhir() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[int]:
        pid = sim.store.search("Patient")[0]["id"]
        read_all = bearer(await allscripts_token(client))
        patients_only = bearer(await allscripts_token(client, scope="system/Patient.read"))
        return [(await client.post("/FHIR/Patient", json=patient(), headers=read_all)).status_code,
                (await client.get("/FHIR/Observation", headers=patients_only)).status_code,
                (await client.get(f"/FHIR/Patient/{pid}", headers=patients_only)).status_code]

    # the default client may only read: its write is refused for scope before the read-only rule
    assert _unity(steps) == [403, 403, 200]


def test_the_write_refusal_status_is_a_setting() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> int:
        auth = bearer(await allscripts_token(client))
        return (await client.post("/FHIR/Patient", json=patient(), headers=auth)).status_code

    assert _unity(steps, write_status=403, scopes=("system/*.cruds",)) == 403


def test_a_unity_token_is_not_a_fhir_bearer_token() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> int:
        token = await unity_token(client)
        return (await client.get("/FHIR/Patient", headers=bearer(token))).status_code

    assert _unity(steps) == 401


def test_magic_calls_count_against_the_rate_limit() -> None:
    async def steps(client: httpx.AsyncClient, sim: Any, clock: VirtualClock) -> list[Any]:
        token = await unity_token(client)
        return [await magic(client, token, "GetServerInfo") for _ in range(3)]

    first, second, third = _unity(steps, rate_limit_per_window=2)
    assert "getserverinfoinfo" in first[0]
    assert "getserverinfoinfo" in second[0]
    assert "request limit" in _error(third)
