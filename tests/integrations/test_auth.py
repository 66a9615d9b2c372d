"""Client credentials auth and the token cache (runbook 002_437ee203264dfa64.txt §2.1: reuse until 60 s
before expiry), driven through the connector against a fake token endpoint in virtual time."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VirtualClock, run_virtual
from integrations.events import RequestCompleted, TokenIssued, TokenRequestFailed
from integrations.fhir import (
    AccessToken,
    AuthError,
    ClientCredentials,
    ClientCredentialsAuth,
    ClientSecretBasic,
    ConnectionFailed,
    ConnectorError,
    RetryPolicy,
    TokenCache,
)
from tests.integrations.fakes import CLIENT_ID, CLIENT_SECRET, TOKEN_URL, FakeVendor, fhir_json, make_kit, patient


def test_token_reused_61_s_before_expiry_and_refreshed_59_s_before() -> None:
    async def main() -> tuple[list[str | None], list[float]]:
        kit = make_kit()
        await kit.connector.read("Patient", "p1")  # t=0: initial token, expires at 3600
        await kit.clock.sleep(3600 - 61)
        await kit.connector.read("Patient", "p1")  # 61 s before expiry: reused
        await kit.clock.sleep(2)
        await kit.connector.read("Patient", "p1")  # 59 s before expiry: refreshed first
        await kit.close()
        return [r.token for r in kit.vendor.requests], [r.t for r in kit.vendor.token_requests]

    tokens, token_times = run_virtual(main)
    assert token_times == [0.0, 3541.0]
    assert tokens[0] == tokens[1]
    assert tokens[2] != tokens[1]


def test_token_cache_margin_boundaries() -> None:
    async def main() -> list[bool]:
        clock = VirtualClock()
        cache = TokenCache(clock)
        cache.store("abc", 600.0, requested_at=clock.monotonic())
        usable = []
        for t in (0.0, 539.0, 539.999, 540.0, 599.0):
            await clock.sleep(t - clock.monotonic())
            usable.append(cache.get() is not None)
        return usable

    assert run_virtual(main) == [True, True, True, False, False]


def test_short_lived_token_is_used_for_half_its_lifetime() -> None:
    async def main() -> tuple[bool, bool]:
        clock = VirtualClock()
        cache = TokenCache(clock)
        cache.store("abc", 40.0, requested_at=0.0)  # shorter than the 60 s margin
        first = cache.get() is not None
        await clock.sleep(20)
        return first, cache.get() is not None

    assert run_virtual(main) == (True, False)


def test_twenty_concurrent_calls_make_one_token_request() -> None:
    async def main() -> tuple[int, int, set[str | None]]:
        kit = make_kit(FakeVendor(VirtualClock(), token_latency=1.5))
        await asyncio.gather(*(kit.connector.read("Patient", "p1") for _ in range(20)))
        await kit.close()
        return len(kit.vendor.token_requests), len(kit.vendor.requests), {r.token for r in kit.vendor.requests}

    token_requests, requests, tokens = run_virtual(main)
    assert token_requests == 1
    assert requests == 20
    assert len(tokens) == 1


def test_concurrent_callers_share_one_failed_token_request() -> None:
    async def main() -> tuple[int, list[BaseException | object]]:
        clock = VirtualClock()
        vendor = FakeVendor(clock, token_latency=1.0, secret="the-server-expects-another-secret")
        kit = make_kit(vendor)
        results = await asyncio.gather(*(kit.connector.read("Patient", "p1") for _ in range(20)),
                                       return_exceptions=True)
        await kit.close()
        return len(vendor.token_requests), results

    token_requests, results = run_virtual(main)
    assert token_requests == 1
    assert all(isinstance(r, AuthError) and r.oauth_error == "invalid_client" for r in results)
    correlation_ids = {r.correlation_id for r in results if isinstance(r, AuthError)}
    assert len(correlation_ids) == 20  # each caller's error names its own call


def test_401_refreshes_once_and_resends_once() -> None:
    async def main() -> tuple[int, list[str | None], list[object]]:
        kit = make_kit()
        await kit.connector.read("Patient", "p1")
        kit.vendor.reject_tokens = 1  # e.g. the server revoked the token
        result = await kit.connector.read("Patient", "p1")
        await kit.close()
        assert result.id == "p1"
        return len(kit.vendor.token_requests), [r.token for r in kit.vendor.requests], kit.of(TokenIssued)

    token_requests, tokens, issued = run_virtual(main)
    assert token_requests == 2
    assert len(tokens) == 3
    assert tokens[1] == tokens[0]
    assert tokens[2] != tokens[1]
    assert [(e.reason, e.refresh) for e in issued if isinstance(e, TokenIssued)] == [
        ("initial", False), ("rejected", True)]


def test_second_401_surfaces_auth_error_without_looping() -> None:
    async def main() -> tuple[int, int, AuthError]:
        kit = make_kit()
        kit.vendor.reject_tokens = 100
        with pytest.raises(AuthError) as caught:
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return len(kit.vendor.token_requests), len(kit.vendor.requests), caught.value

    token_requests, requests, error = run_virtual(main)
    assert (token_requests, requests) == (2, 2)  # initial + one refresh; first send + one resend
    assert error.status == 401
    assert error.is_auth
    assert not error.retryable


def test_concurrent_401s_share_one_refresh() -> None:
    async def main() -> int:
        kit = make_kit(FakeVendor(VirtualClock(), latency=1.0))
        await kit.connector.read("Patient", "p1")
        kit.vendor.revoke_all()  # all five calls below are sent with the revoked token
        await asyncio.gather(*(kit.connector.read("Patient", "p1") for _ in range(5)))
        await kit.close()
        return len(kit.vendor.token_requests)

    assert run_virtual(main) == 2


@st.composite
def schedules(draw: st.DrawFn) -> tuple[float, float, list[float]]:
    """A token lifetime, a network latency, and call times: anywhere, or just before a lifetime ends.
    The first call is at 0, so the first token's lifetime ends at `expires_in` (plus the token latency)."""
    expires_in = draw(st.floats(min_value=30, max_value=4000))
    latency = draw(st.floats(min_value=0, max_value=5))
    near_expiry = st.integers(1, 3).flatmap(lambda k: st.floats(k * expires_in - 70, k * expires_in))
    times = draw(st.lists(st.one_of(st.floats(0, 3 * expires_in), near_expiry), max_size=25))
    return expires_in, latency, [0.0, *sorted(times)]


@settings(max_examples=80, deadline=None)
@given(schedules())
def test_no_request_ever_carries_an_expired_token(schedule: tuple[float, float, list[float]]) -> None:
    expires_in, latency, times = schedule

    async def main() -> tuple[int, int]:
        clock = VirtualClock()
        vendor = FakeVendor(clock, expires_in=expires_in, latency=latency, token_latency=latency / 2)
        kit = make_kit(vendor)
        for t in times:
            await clock.sleep(t - clock.monotonic())
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return len(vendor.expired_use), len(vendor.requests)

    expired, sent = run_virtual(main)
    assert expired == 0  # the server never saw an expired token, even after the request's latency
    assert sent == len(times)  # and never answered 401, so nothing was resent


def test_token_request_is_form_encoded_client_credentials_through_the_same_transport() -> None:
    async def main() -> FakeVendor:
        kit = make_kit()
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return kit.vendor

    vendor = run_virtual(main)
    (token_request,) = vendor.token_requests
    assert token_request.method == "POST"
    assert str(token_request.url) == TOKEN_URL
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(token_request.body.decode())
    assert form == {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID], "client_secret": [CLIENT_SECRET]}
    assert token_request.headers["x-correlation-id"] == vendor.requests[0].headers["x-correlation-id"]


def test_client_secret_basic_puts_credentials_in_the_header() -> None:
    async def main() -> httpx.Request:
        clock = VirtualClock()
        seen: list[httpx.Request] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if request.url.path == "/oauth2/token":
                return httpx.Response(200, json={"access_token": "t1", "token_type": "bearer", "expires_in": 570})
            return fhir_json(200, patient())

        auth = ClientCredentialsAuth(vendor="cerner", token_url=TOKEN_URL, clock=clock,
                                     credentials=lambda: ClientCredentials("id:1", "p&ss w"),
                                     client_auth=ClientSecretBasic(), scope="system/Patient.read")
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as client:
            await client.get("https://ehr.example.test/fhir/R4/Patient/p1")
        return seen[0]

    request = run_virtual(main)
    form = parse_qs(request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["system/Patient.read"]}
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "id%3A1:p%26ss+w"


def test_credentials_are_read_for_every_token_request() -> None:
    rotated = ClientCredentials(CLIENT_ID, "rotated-secret-0b9e")
    current = [ClientCredentials(CLIENT_ID, CLIENT_SECRET)]

    async def main() -> list[list[str]]:
        vendor = FakeVendor(VirtualClock())
        kit = make_kit(vendor, credentials=lambda: current[0])
        await kit.connector.read("Patient", "p1")
        current[0] = rotated
        vendor.secret = rotated.client_secret
        await kit.clock.sleep(3600)
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return [parse_qs(r.body.decode())["client_secret"] for r in vendor.token_requests]

    assert run_virtual(main) == [[CLIENT_SECRET], ["rotated-secret-0b9e"]]


def test_token_endpoint_refusal_is_an_auth_error_with_the_oauth_code_only() -> None:
    async def main() -> tuple[AuthError, list[object]]:
        vendor = FakeVendor(VirtualClock())
        vendor.token_failures.append(httpx.Response(401, json={
            "error": "invalid_client", "error_description": f"bad secret {CLIENT_SECRET}"}))
        kit = make_kit(vendor)
        with pytest.raises(AuthError) as caught:
            await kit.connector.read("Patient", "p1")
        await kit.close()
        assert vendor.requests == []  # nothing was sent without a token
        # the attempt is journaled, but the token endpoint's 401 is not the FHIR path's status; the one
        # credential was refused, so the error is the typed `CredentialsRejected` (an `AuthError`)
        assert [(e.status, e.error) for e in kit.of(RequestCompleted) if isinstance(e, RequestCompleted)] == [
            (None, "CredentialsRejected")]
        return caught.value, kit.of(TokenRequestFailed)

    error, failed = run_virtual(main)
    assert error.oauth_error == "invalid_client"
    assert error.token_endpoint
    assert error.status == 401
    assert not error.retryable
    assert "invalid_client" in str(error)
    assert CLIENT_SECRET not in str(error)
    assert CLIENT_SECRET not in repr(error)
    assert failed == [TokenRequestFailed(vendor="fake", status=401, error="invalid_client")]


@pytest.mark.parametrize(
    ("response", "error_name"),
    [
        (httpx.Response(200, content=b"<html>login</html>"), "MalformedResponse"),
        (httpx.Response(200, json={"token_type": "Bearer", "expires_in": 60}), "MalformedResponse"),
        (httpx.Response(200, json={"access_token": "a b", "expires_in": 60}), "MalformedResponse"),
        (httpx.Response(200, json={"access_token": "x", "token_type": "mac", "expires_in": 60}), "MalformedResponse"),
        (httpx.Response(200, json={"access_token": "x", "expires_in": -5}), "MalformedResponse"),
        (httpx.Response(400, text="Unsupported content type"), "AuthError"),
    ],
)
def test_unusable_token_responses_are_malformed_or_refusals(response: httpx.Response, error_name: str) -> None:
    """A 2xx without a usable token is the vendor's fault (MalformedResponse), a 4xx a refusal (AuthError)."""
    async def main() -> tuple[ConnectorError, list[object]]:
        vendor = FakeVendor(VirtualClock())
        vendor.token_failures.append(response)
        kit = make_kit(vendor)
        with pytest.raises(ConnectorError) as caught:
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return caught.value, kit.of(TokenRequestFailed)

    error, failed = run_virtual(main)
    assert type(error).__name__ == error_name
    assert error.token_endpoint
    assert not isinstance(error, AuthError) or error.oauth_error is None
    assert [e.error for e in failed if isinstance(e, TokenRequestFailed)] == [error_name]


def test_token_endpoint_outage_is_retried_and_then_succeeds() -> None:
    async def main() -> tuple[list[str], int, list[object]]:
        vendor = FakeVendor(VirtualClock())
        vendor.token_failures.extend([httpx.Response(503), httpx.Response(503)])
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=3))
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return ([e.error for e in kit.of(TokenRequestFailed) if isinstance(e, TokenRequestFailed)],
                len(vendor.token_requests), kit.of(TokenIssued))

    errors, token_requests, issued = run_virtual(main)
    assert errors == ["ServerError", "ServerError"]
    assert token_requests == 3
    assert len(issued) == 1


def test_token_endpoint_transport_failure_emits_token_request_failed() -> None:
    async def main() -> list[object]:
        vendor = FakeVendor(VirtualClock())
        vendor.token_failures.append(httpx.ConnectError("connection refused"))
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ConnectionFailed):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return kit.of(TokenRequestFailed)

    assert run_virtual(main) == [TokenRequestFailed(vendor="fake", status=None, error="ConnectionFailed")]


def test_secrets_are_redacted_from_reprs() -> None:
    credentials = ClientCredentials("client-1", "hunter2-secret")
    token = AccessToken(value="eyJ-token-value", expires_in_s=60, requested_at=0)
    assert "hunter2-secret" not in repr(credentials)
    assert "hunter2-secret" not in str(credentials)
    assert "client-1" in repr(credentials)
    assert "eyJ-token-value" not in repr(token)
    assert "eyJ-token-value" not in str(token)


def test_sync_clients_are_refused() -> None:
    auth = ClientCredentialsAuth(vendor="fake", token_url=TOKEN_URL, clock=VirtualClock(),
                                 credentials=lambda: ClientCredentials("a", "b"))
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), auth=auth) as client, \
            pytest.raises(RuntimeError, match="AsyncClient"):
        client.get("https://ehr.example.test/")
