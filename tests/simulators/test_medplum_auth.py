"""Medplum's token endpoint and the Bearer check on /fhir/R4 (reference/vendors.md §3)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.medplum import MedplumSimulator
from tests.simulators.support import CLIENT_ID, CLIENT_SECRET, bearer, client_for, get_token, make_medplum


def _token_request(data: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                   content: bytes | None = None, **settings: Any) -> httpx.Response:
    async def main() -> httpx.Response:
        sim = make_medplum(**settings)
        async with client_for(sim) as client:
            return await client.post("/oauth2/token", data=data, content=content, headers=headers)

    return run_virtual(main)


def test_client_credentials_in_the_form() -> None:
    response = _token_request({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                               "client_secret": CLIENT_SECRET}, project_id="proj-1")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid"
    assert body["project"] == {"reference": "Project/proj-1"}
    assert len(body["access_token"]) >= 32


def test_client_credentials_with_basic_auth_and_scope() -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = _token_request({"grant_type": "client_credentials", "scope": "system/*.read"},
                              headers={"Authorization": f"Basic {basic}"}, token_lifetime_s=600)
    assert response.status_code == 200
    assert response.json()["scope"] == "system/*.read"
    assert response.json()["expires_in"] == 600


@pytest.mark.parametrize(("form", "headers", "error", "description"), [
    ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, {}, "invalid_request", "Missing grant_type"),
    ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"}, {},
     "invalid_request", "Invalid secret"),
    ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": CLIENT_SECRET}, {},
     "invalid_request", "Invalid client"),
    ({"grant_type": "client_credentials", "client_id": CLIENT_ID}, {}, "invalid_request", "Missing client_secret"),
    ({"grant_type": "client_credentials", "client_secret": CLIENT_SECRET}, {}, "invalid_request",
     "Missing client_id"),
    ({"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, {},
     "invalid_request", "Unsupported grant_type"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Bearer abc"}, "invalid_request",
     "Invalid authorization header"),
    ({"grant_type": "client_credentials"},
     {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:nope".encode()).decode()},
     "invalid_request", "Invalid secret"),
    ({"grant_type": "client_credentials", "client_assertion_type": "urn:x", "client_assertion": "a.b.c"}, {},
     "invalid_request", "Unsupported client assertion type"),
])
def test_token_errors(form: dict[str, str], headers: dict[str, str], error: str, description: str) -> None:
    response = _token_request(form, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_token_needs_a_form_body(content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = _token_request(content=b'{"grant_type": "client_credentials"}', headers=headers)
    assert response.status_code == 400
    assert response.text == "Unsupported content type"


def test_token_response_never_contains_the_secret() -> None:
    response = _token_request({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                               "client_secret": CLIENT_SECRET})
    assert response.status_code == 200
    assert CLIENT_SECRET not in response.text


def test_settings_hide_secrets() -> None:
    async def build() -> MedplumSimulator:
        return make_medplum()

    sim = run_virtual(build)
    assert CLIENT_SECRET not in repr(sim.settings)
    assert "admin-token" not in repr(sim.settings)
    assert CLIENT_SECRET not in repr(sim)


# -- Bearer check ------------------------------------------------------------------------------


def _unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["id"] == "unauthorized"
    assert outcome["issue"][0]["code"] == "login"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"},
                                     {"Authorization": "Bearer"}])
@pytest.mark.parametrize("path", ["/fhir/R4/Patient/123", "/fhir/R4/Patient", "/fhir/R4/Unknown/1",
                                  "/fhir/R4/metadata/x/y"])
def test_fhir_calls_without_a_valid_token_are_401(headers: dict[str, str], path: str) -> None:
    async def main() -> httpx.Response:
        sim = make_medplum()
        async with client_for(sim) as client:
            return await client.get(path, headers=headers)

    _unauthorized(run_virtual(main))


def test_a_write_without_a_token_changes_nothing() -> None:
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            response = await client.post("/fhir/R4/Patient", json={"resourceType": "Patient"})
            _unauthorized(response)
            assert sim.store.count("Patient") == 0

    run_virtual(main)


def test_token_expires_after_its_lifetime_in_virtual_time() -> None:
    clock = VirtualClock()

    async def main() -> None:
        sim = make_medplum(clock=clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = await get_token(client)
            await clock.sleep(3599)
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token))).status_code == 200
            await clock.sleep(1)
            _unauthorized(await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token)))
            fresh = await get_token(client)
            assert fresh != token
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(fresh))).status_code == 200

    run_virtual(main)


def test_revoked_tokens_are_refused() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = await get_token(client)
            assert sim.tokens.revoke_client(CLIENT_ID) == 1
            _unauthorized(await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token)))

    run_virtual(main)
