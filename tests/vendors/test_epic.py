"""Epic contract tests (reference/vendors.md §1, §5), in-process on the virtual clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock
from tests.vendors.keys import CLIENT_ID, claims, ec_key, public_jwks, rsa_key, sign
from tests.vendors.support import (
    ADMIN,
    EPIC_FHIR,
    EPIC_TOKEN_URL,
    EPIC_URL,
    bearer,
    client_for,
    epic_form,
    epic_token,
    make_epic,
    patient,
    virtual,
)

EPIC_CODE_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"


def _epic_codes(outcome: dict[str, Any]) -> list[str]:
    return [coding["code"] for issue in outcome["issue"] for coding in issue.get("details", {}).get("coding", [])]


def _token_request(make: Any, *, describe: bool = True, **settings: Any) -> httpx.Response:
    """POST one assertion `make(now)` to the token endpoint of a fresh Epic simulator."""

    async def main(clock: VirtualClock) -> httpx.Response:
        sim = make_epic(clock, error_descriptions=describe, **settings)
        async with client_for(sim.app, EPIC_URL) as client:
            return await client.post("/oauth2/token", data=epic_form(make(clock.now().timestamp())))

    return virtual(main)


@pytest.mark.parametrize(("alg", "key"), [("RS384", rsa_key), ("ES384", ec_key)])
def test_a_valid_backend_services_assertion_gets_a_bearer_token(alg: str, key: Any) -> None:
    response = _token_request(lambda now: sign(claims(now, EPIC_TOKEN_URL), key(), alg=alg))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300  # SMART's recommendation; Epic's own value is unconfirmed (vendors.md §1)
    assert body["scope"] == "system/*.cruds"
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda now: sign(claims(now, EPIC_TOKEN_URL), rsa_key(), alg="RS256"), "alg must be one of"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL), rsa_key(), header={"kid": ""}), "kid header is required"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL), rsa_key(), header={"kid": "unknown"}), "no registered key"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL, sub="other"), rsa_key()), "sub must equal iss"),
    (lambda now: sign(claims(now, "http://epic.test/api/FHIR/R4"), rsa_key()), "aud must be the token endpoint"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL, lifetime=400), rsa_key()), "more than 300 s in the future"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL, lifetime=-30), rsa_key()), "expired"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL, client_id="unknown-app"), rsa_key()), "not a registered client"),
    (lambda now: sign(claims(now, EPIC_TOKEN_URL), rsa_key(), typ="JOSE"), "typ header must be JWT"),
])
def test_each_invalid_assertion_is_400_invalid_client(make: Any, reason: str) -> None:
    response = _token_request(make)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert reason in response.json()["error_description"]


def test_by_default_the_error_description_is_null_as_epics_sandbox_sends_it() -> None:
    response = _token_request(lambda now: sign(claims(now, EPIC_TOKEN_URL, sub="x"), rsa_key()), describe=False)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client", "error_description": None}


def test_a_replayed_assertion_is_refused() -> None:
    async def main(clock: VirtualClock) -> list[int]:
        sim = make_epic(clock)
        assertion = sign(claims(clock.now().timestamp(), EPIC_TOKEN_URL, jti="replay-me"), rsa_key())
        async with client_for(sim.app, EPIC_URL) as client:
            return [(await client.post("/oauth2/token", data=epic_form(assertion))).status_code for _ in range(2)]

    assert virtual(main) == [200, 400]


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "client_credentials"}, "invalid_client"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({}, "invalid_request"),
    ({"grant_type": "client_credentials", "client_assertion_type": "urn:other", "client_assertion": "x.y.z"},
     "invalid_client"),
])
def test_malformed_token_requests_get_oauth_errors(form: dict[str, str], error: str) -> None:
    async def main(clock: VirtualClock) -> httpx.Response:
        async with client_for(make_epic(clock).app, EPIC_URL) as client:
            return await client.post("/oauth2/token", data=form)

    response = virtual(main)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_a_json_token_request_is_invalid_request_not_a_5xx() -> None:
    async def main(clock: VirtualClock) -> httpx.Response:
        async with client_for(make_epic(clock).app, EPIC_URL) as client:
            return await client.post("/oauth2/token", json={"grant_type": "client_credentials"})

    response = virtual(main)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_aud_is_the_url_the_client_used_so_a_proxy_on_another_port_works() -> None:
    async def main(clock: VirtualClock) -> list[int]:
        sim = make_epic(clock)
        statuses = []
        async with client_for(sim.app, "http://127.0.0.1:18443") as client:
            for aud, jti in (("http://127.0.0.1:18443/oauth2/token", "a"), (EPIC_TOKEN_URL, "b")):
                assertion = sign(claims(clock.now().timestamp(), aud, jti=jti), rsa_key())
                statuses.append((await client.post("/oauth2/token", data=epic_form(assertion))).status_code)
        return statuses

    assert virtual(main) == [200, 400]


def test_keys_registered_by_jwks_url_are_fetched_through_the_injected_transport() -> None:
    fetched: list[str] = []

    def jwks(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=public_jwks(ec_key()))

    async def main(clock: VirtualClock) -> list[int]:
        sim = make_epic(clock, jwks_url="https://app.example/.well-known/jwks.json",
                        jwks_transport=httpx.MockTransport(jwks))
        async with client_for(sim.app, EPIC_URL) as client:
            statuses = []
            for jti in ("1", "2"):
                assertion = sign(claims(clock.now().timestamp(), EPIC_TOKEN_URL, jti=jti), ec_key(), alg="ES384")
                statuses.append((await client.post("/oauth2/token", data=epic_form(assertion))).status_code)
            return statuses

    assert virtual(main) == [200, 200]
    assert fetched == ["https://app.example/.well-known/jwks.json"]  # cached for the second request


def test_a_token_lifetime_setting_changes_expires_in_and_the_token_really_expires() -> None:
    async def main(clock: VirtualClock) -> tuple[int, list[int]]:
        sim = make_epic(clock, token_lifetime_s=120)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            assertion = sign(claims(clock.now().timestamp(), EPIC_TOKEN_URL), rsa_key())
            body = (await client.post("/oauth2/token", data=epic_form(assertion))).json()
            statuses = [(await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=bearer(body["access_token"])))
                        .status_code]
            await clock.sleep(120)
            response = await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=bearer(body["access_token"]))
            statuses.append(response.status_code)
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            return body["expires_in"], statuses

    assert virtual(main) == (120, [200, 401])


def test_requested_scopes_are_narrowed_and_a_missing_scope_is_403_with_epic_code_4118() -> None:
    async def main(clock: VirtualClock) -> tuple[str, list[int], dict[str, Any]]:
        sim = make_epic(clock, scopes=("system/Patient.read",))
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            assertion = sign(claims(clock.now().timestamp(), EPIC_TOKEN_URL), rsa_key())
            body = (await client.post("/oauth2/token", data=epic_form(
                assertion, scope="system/Patient.read system/Observation.read"))).json()
            auth = bearer(body["access_token"])
            read = await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)
            search = await client.get(f"{EPIC_FHIR}/Patient", headers=auth)
            other = await client.get(f"{EPIC_FHIR}/Observation", headers=auth)
            write = await client.post(f"{EPIC_FHIR}/Patient", json=patient(), headers=auth)
            return body["scope"], [read.status_code, search.status_code, other.status_code,
                                   write.status_code], other.json()

    scope, statuses, outcome = virtual(main)
    assert scope == "system/Patient.read"
    assert statuses == [200, 200, 403, 403]
    assert _epic_codes(outcome) == ["4118"]
    assert outcome["issue"][0]["details"]["coding"][0]["system"] == EPIC_CODE_SYSTEM


def test_operation_outcomes_carry_epics_codes_4102_and_4103() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_epic(clock)
        [pid] = sim.seed_patients(1)
        sim.store.delete("Patient", pid)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            return (await client.get(f"{EPIC_FHIR}/Patient/eNoSuchPatient3", headers=auth),
                    await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth))

    missing, deleted = virtual(main)
    assert (missing.status_code, _epic_codes(missing.json())) == (404, ["4102"])
    assert (deleted.status_code, _epic_codes(deleted.json())) == (410, ["4103"])
    assert deleted.json()["issue"][0]["severity"] == "fatal"


def test_an_unauthenticated_call_is_401_with_a_bearer_challenge() -> None:
    async def main(clock: VirtualClock) -> httpx.Response:
        async with client_for(make_epic(clock).app, EPIC_URL) as client:
            return await client.get(f"{EPIC_FHIR}/Patient")

    response = virtual(main)
    assert response.status_code == 401
    assert response.json()["issue"][0]["code"] == "login"
    assert "www-authenticate" in response.headers


@pytest.mark.parametrize("retry_after", [False, True])
def test_the_per_client_limit_answers_429_and_retry_after_is_a_setting(retry_after: bool) -> None:
    async def main(clock: VirtualClock) -> tuple[list[int], httpx.Response, int]:
        sim = make_epic(clock, rate_limit_per_window=3, retry_after_on_429=retry_after)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            statuses = [(await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)).status_code for _ in range(3)]
            refused = await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)
            await clock.sleep(3600)
            later = (await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=bearer(
                await epic_token(client, clock, jti="later")))).status_code
            return statuses, refused, later

    statuses, refused, later = virtual(main)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert ("retry-after" in refused.headers) is retry_after
    assert later == 200


def test_the_default_limit_is_600_requests_per_hour_per_client() -> None:
    async def main(clock: VirtualClock) -> dict[str, Any]:
        sim = make_epic(clock)
        async with client_for(sim.app, EPIC_URL) as client:
            return (await client.get("/admin/rate-limits", headers=ADMIN)).json()

    settings = virtual(main)
    assert "600" in str(settings)
    assert "3600" in str(settings)


def test_a_stale_if_match_is_412_and_versions_are_integers() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_epic(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            current = (await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)).json()
            updated = await client.put(f"{EPIC_FHIR}/Patient/{pid}", json=current,
                                       headers={**auth, "If-Match": 'W/"1"'})
            stale = await client.put(f"{EPIC_FHIR}/Patient/{pid}", json=current,
                                     headers={**auth, "If-Match": 'W/"1"'})
            return updated, stale

    updated, stale = virtual(main)
    assert (updated.status_code, updated.headers["etag"]) == (200, 'W/"2"')
    assert stale.status_code == 412


def test_ids_look_like_epics_and_the_prefix_is_configurable() -> None:
    async def main(clock: VirtualClock) -> tuple[list[str], int]:
        sim = make_epic(clock, path_prefix="/interconnect-fhir-oauth")
        ids = sim.seed_patients(2)
        async with client_for(sim.app, "http://fhir.epic.test") as client:
            aud = "http://fhir.epic.test/interconnect-fhir-oauth/oauth2/token"
            response = await client.post("/interconnect-fhir-oauth/oauth2/token",
                                         data=epic_form(sign(claims(clock.now().timestamp(), aud), rsa_key())))
            token = response.json()["access_token"]
            read = await client.get(f"/interconnect-fhir-oauth/api/FHIR/R4/Patient/{ids[0]}", headers=bearer(token))
            return ids, read.status_code

    ids, status = virtual(main)
    assert status == 200
    assert all(len(i) == 24 and i.startswith("e") and i.endswith("3") for i in ids)


def test_admin_api_journals_the_client_and_forces_token_expiry() -> None:
    async def main(clock: VirtualClock) -> tuple[list[int], list[Any]]:
        sim = make_epic(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            statuses = [(await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)).status_code]
            expired = await client.post("/admin/tokens/expire", json={}, headers=ADMIN)
            statuses.append(expired.status_code)
            statuses.append((await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=auth)).status_code)
            journal = (await client.get("/admin/requests", headers=ADMIN)).json()
            return statuses, [entry["client"] for entry in journal["entries"]]

    statuses, clients = virtual(main)
    assert statuses == [200, 200, 401]
    assert clients[:2] == [CLIENT_ID, CLIENT_ID]


def test_smart_configuration_names_this_servers_token_endpoint_and_capabilities() -> None:
    async def main(clock: VirtualClock) -> httpx.Response:
        async with client_for(make_epic(clock).app, "http://127.0.0.1:8123") as client:
            return await client.get(f"{EPIC_FHIR}/.well-known/smart-configuration")

    response = virtual(main)
    assert response.status_code == 200
    body = response.json()
    assert body["token_endpoint"] == "http://127.0.0.1:8123/oauth2/token"
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert {"permission-v1", "permission-v2", "client-confidential-asymmetric"} <= set(body["capabilities"])


def test_paging_follows_a_search_session_that_expires_with_code_4113() -> None:
    async def main(clock: VirtualClock) -> tuple[list[int], httpx.Response]:
        sim = make_epic(clock, search_session_ttl_s=60)
        sim.seed_patients(5)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            first = (await client.get(f"{EPIC_FHIR}/Patient", params={"_count": "2"}, headers=auth)).json()
            [next_url] = [link["url"] for link in first["link"] if link["relation"] == "next"]
            second = await client.get(next_url, headers=auth)
            await clock.sleep(61)
            expired = await client.get(next_url, headers=auth)
            return [len(first["entry"]), second.status_code], expired

    statuses, expired = virtual(main)
    assert statuses == [2, 200]
    assert expired.status_code == 410
    assert _epic_codes(expired.json()) == ["4113"]
