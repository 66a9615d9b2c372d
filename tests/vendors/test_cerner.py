"""Cerner contract tests (reference/vendors.md §2), in-process on the virtual clock."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock
from simulators.cerner import SANDBOX_TENANT
from tests.vendors.keys import CLIENT_ID
from tests.vendors.support import (
    ADMIN,
    CERNER_FHIR,
    CERNER_TOKEN_PATH,
    CERNER_URL,
    OTHER_TENANT,
    SECRET,
    basic,
    bearer,
    cerner_token,
    client_for,
    make_cerner,
    patient,
    virtual,
)

ERROR_URI = re.compile(r"^https://authorization\.cerner\.com/errors/urn%3Acerner%3Aerror%3A[^/]+/instances/"
                       r"[0-9a-f-]{36}\?client=[^&]*&tenant=[0-9a-f-]+$")


def _token(headers: dict[str, str], data: dict[str, str], path: str = CERNER_TOKEN_PATH) -> httpx.Response:
    async def main(clock: VirtualClock) -> httpx.Response:
        async with client_for(make_cerner(clock).app, CERNER_URL) as client:
            return await client.post(path, data=data, headers=headers)

    return virtual(main)


GRANT = {"grant_type": "client_credentials", "scope": "system/Observation.read system/Patient.read"}


def test_basic_client_credentials_get_a_570_second_token_with_the_requested_system_scopes() -> None:
    response = _token(basic(CLIENT_ID, SECRET), GRANT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 570
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/Observation.read system/Patient.read"


@pytest.mark.parametrize(("headers", "data", "status", "error"), [
    ({}, GRANT, 401, "invalid_client"),  # no Basic header
    (basic(CLIENT_ID, "wrong"), GRANT, 401, "invalid_client"),
    (basic("nobody", SECRET), GRANT, 401, "invalid_client"),
    ({"Authorization": "Basic !!!not-base64"}, GRANT, 401, "invalid_client"),
    ({"Authorization": "Basic " + base64.b64encode(CLIENT_ID.encode()).decode()}, GRANT, 401, "invalid_client"),
    ({}, {**GRANT, "client_id": CLIENT_ID, "client_secret": SECRET}, 401, "invalid_client"),  # secret in the form
    (basic("other-tenant-app", SECRET), GRANT, 401, "invalid_client"),  # registered in another tenant
    (basic(CLIENT_ID, SECRET), {**GRANT, "grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
    (basic(CLIENT_ID, SECRET), {**GRANT, "scope": "system/Account.read, system/Patient.read"}, 400, "invalid_grant"),
    (basic(CLIENT_ID, SECRET), {**GRANT, "scope": "user/Patient.read"}, 400, "invalid_grant"),
    (basic(CLIENT_ID, SECRET), {**GRANT, "scope": "system/Patient.*"}, 400, "invalid_scope"),
    (basic(CLIENT_ID, SECRET), {"scope": "system/Patient.read"}, 400, "invalid_request"),
])
def test_token_errors_carry_error_uri_not_error_description(headers: dict[str, str], data: dict[str, str],
                                                           status: int, error: str) -> None:
    response = _token(headers, data)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_uri"}
    assert body["error"] == error
    assert ERROR_URI.match(body["error_uri"]), body["error_uri"]
    assert f"tenant={SANDBOX_TENANT}" in body["error_uri"]
    assert (response.headers.get("www-authenticate", "").startswith("Basic")) is (status == 401)


def test_an_unknown_tenants_token_endpoint_refuses() -> None:
    path = "/tenants/no-such-tenant/protocols/oauth2/profiles/smart-v1/token"
    response = _token(basic(CLIENT_ID, SECRET), GRANT, path)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_unknown_tenant_is_403_tenant_not_valid() -> None:
    async def main(clock: VirtualClock) -> httpx.Response:
        sim = make_cerner(clock)
        async with client_for(sim.app, CERNER_URL) as client:
            token = await cerner_token(client)
            return await client.get("/r4/3f1ee0f2-0000-4000-8000-000000000000/Patient", headers=bearer(token))

    response = virtual(main)
    assert response.status_code == 403
    assert response.json()["issue"][0]["details"]["text"] == "Tenant not valid or accessible"


def test_a_token_of_one_tenant_is_refused_at_another_and_ids_are_per_tenant() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, int, int]:
        sim = make_cerner(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, CERNER_URL) as client:
            token = await cerner_token(client)
            elsewhere = await client.get(f"/r4/{OTHER_TENANT}/Patient/{pid}", headers=bearer(token))
            other_token = await cerner_token(client, client_id="other-tenant-app", tenant=OTHER_TENANT)
            not_there = await client.get(f"/r4/{OTHER_TENANT}/Patient/{pid}", headers=bearer(other_token))
            here = await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=bearer(token))
            return elsewhere, not_there.status_code, here.status_code

    elsewhere, not_there, here = virtual(main)
    assert elsewhere.status_code == 401
    assert elsewhere.headers["www-authenticate"] == (
        'Bearer realm="fhir-ehr-code.cerner.com", error="invalid_token", '
        'error_description="Token has expired or signature is invalid"')
    assert not_there == 404
    assert here == 200


def test_versions_start_at_0_and_a_stale_version_is_409_not_412() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        sim = make_cerner(clock)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client))
            created = await client.post(f"{CERNER_FHIR}/Patient", json=patient(), headers=auth)
            body = created.json()
            updated = await client.put(f"{CERNER_FHIR}/Patient/{body['id']}", json=body,
                                       headers={**auth, "If-Match": 'W/"0"'})
            stale = await client.put(f"{CERNER_FHIR}/Patient/{body['id']}", json=body,
                                     headers={**auth, "If-Match": 'W/"0"'})
            return created, updated, stale

    created, updated, stale = virtual(main)
    assert (created.status_code, created.headers["etag"]) == (201, 'W/"0"')
    assert (updated.status_code, updated.headers["etag"]) == (200, 'W/"1"')
    assert stale.status_code == 409
    assert stale.json()["resourceType"] == "OperationOutcome"


def test_a_missing_scope_is_403() -> None:
    async def main(clock: VirtualClock) -> list[int]:
        sim = make_cerner(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client, "system/Patient.read"))
            return [(await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=auth)).status_code,
                    (await client.get(f"{CERNER_FHIR}/Observation", headers=auth)).status_code,
                    (await client.post(f"{CERNER_FHIR}/Patient", json=patient(), headers=auth)).status_code]

    assert virtual(main) == [200, 403, 403]


def test_the_per_client_limit_answers_429_then_recovers_after_the_window() -> None:
    async def main(clock: VirtualClock) -> list[int]:
        sim = make_cerner(clock, rate_limit_per_window=2, rate_limit_window_s=60)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client))
            statuses = [(await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=auth)).status_code
                        for _ in range(3)]
            await clock.sleep(60)
            statuses.append((await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=auth)).status_code)
            return statuses

    assert virtual(main) == [200, 200, 429, 200]


def test_default_limit_and_headers_follow_cerner() -> None:
    async def main(clock: VirtualClock) -> tuple[Any, httpx.Response]:
        sim = make_cerner(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, CERNER_URL) as client:
            limits = (await client.get("/admin/rate-limits", headers=ADMIN)).json()
            read = await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=bearer(await cerner_token(client)))
            return limits, read

    limits, read = virtual(main)
    assert "10000" in str(limits)
    assert read.headers["content-type"].startswith("application/json+fhir")
    assert re.fullmatch(r"[0-9a-f-]{36}", read.headers["x-request-id"])


def test_chaos_scoped_to_a_client_hits_only_that_clients_calls() -> None:
    async def main(clock: VirtualClock) -> list[int]:
        sim = make_cerner(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client))
            fault = {"status": 503, "scope": {"client_id": CLIENT_ID}}
            assert (await client.put("/admin/chaos/outage", json=fault, headers=ADMIN)).status_code == 200
            hit = (await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=auth)).status_code
            assert (await client.delete("/admin/chaos", headers=ADMIN)).status_code == 200
            fault["scope"] = {"client_id": "someone-else"}
            assert (await client.put("/admin/chaos/outage", json=fault, headers=ADMIN)).status_code == 200
            missed = (await client.get(f"{CERNER_FHIR}/Patient/{pid}", headers=auth)).status_code
            return [hit, missed]

    assert virtual(main) == [503, 200]


def test_bulk_export_status_polls_say_retry_after_600() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_cerner(clock, scopes=("system/*.read",))
        sim.seed_patients(2)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client, "system/Patient.read"))
            kickoff = await client.get(f"{CERNER_FHIR}/Patient/$export",
                                       headers={**auth, "Prefer": "respond-async", "Accept": "application/fhir+json"})
            status_url = kickoff.headers.get("content-location", "")
            return kickoff, await client.get(status_url, headers=auth)

    kickoff, poll = virtual(main)
    assert kickoff.status_code == 202, kickoff.text
    assert poll.status_code == 202
    assert poll.headers["retry-after"] == "600"


def test_json_patch_with_if_match_bumps_the_version_and_a_stale_one_is_409() -> None:
    """vendors.md §2 "Writes": PATCH with application/json-patch+json and If-Match: W/"<version>"."""
    patch_type = {"Content-Type": "application/json-patch+json"}
    operations = [{"op": "replace", "path": "/gender", "value": "male"}]

    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        sim = make_cerner(clock)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client))
            pid = (await client.post(f"{CERNER_FHIR}/Patient", json=patient(), headers=auth)).json()["id"]
            url = f"{CERNER_FHIR}/Patient/{pid}"
            patched = await client.patch(url, json=operations, headers={**auth, **patch_type, "If-Match": 'W/"0"'})
            stale = await client.patch(url, json=operations, headers={**auth, **patch_type, "If-Match": 'W/"0"'})
            return patched, stale, await client.get(url, headers=auth)

    patched, stale, read = virtual(main)
    assert (patched.status_code, patched.headers["etag"], patched.json()["gender"]) == (200, 'W/"1"', "male")
    assert stale.status_code == 409
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert (read.headers["etag"], read.json()["gender"]) == ('W/"1"', "male")
