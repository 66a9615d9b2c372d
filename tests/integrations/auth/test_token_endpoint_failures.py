"""A token endpoint that fails is classed as the same failure on a FHIR call would be, for every vendor's
auth flow as the lab builds it (Epic: SMART JWT assertion, Cerner: HTTP Basic, Medplum and Allscripts:
client secret in the form, Allscripts Unity: GetToken security tokens), against the vendor simulators.

Runbook 000_030ea53f0735abf7.txt §4: a 5xx means "check Epic status", a 401 "rotate credentials". So:

| token endpoint                    | caller gets                     | retried | journal `token.failed`       |
|-----------------------------------|---------------------------------|---------|------------------------------|
| 503                               | ServerError (token_endpoint)    | yes     | status 503, ServerError      |
| no answer within the timeout      | RequestTimeout (token_endpoint) | yes     | status None, RequestTimeout  |
| connection refused                | ConnectionFailed (token_endpoint) | yes   | status None, ConnectionFailed |
| the credential refused (revoked)  | AuthError (CredentialsRejected) | no      | status 400/401, the OAuth code |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from harness.journal import TokenFailedEvent
from harness.vendors import VENDORS
from integrations.errors import IntegrationError
from integrations.events import RequestCompleted, RetryScheduled
from integrations.fhir import (
    AuthError,
    ConnectionFailed,
    ConnectorError,
    CredentialsRejected,
    RequestTimeout,
    ServerError,
)
from tests.integrations.auth.support import TOKEN_PATHS, build

Mode = Literal["503", "stall", "refused", "revoked"]
CLIENTS = [*sorted(VENDORS), "allscripts-unity"]  # allscripts' FHIR API (OAuth) and its Unity API (GetToken)


class TokenEndpointFault(httpx.AsyncBaseTransport):
    """Between the client and the simulator: the token endpoint answers 503, never answers, or refuses the
    connection; every other request (and, with no mode, token requests too) reaches the simulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock, mode: Mode) -> None:
        self.inner = inner
        self.clock = clock
        self.mode = mode
        self.token_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(TOKEN_PATHS):
            self.token_requests += 1
            if self.mode == "503":
                return httpx.Response(503, json={"error": "temporarily_unavailable"}, headers={"Retry-After": "2"})
            if self.mode == "stall":
                await self.clock.sleep(3600)
            if self.mode == "refused":
                raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Result:
    error: ConnectorError
    token_requests: int
    retries: list[str]
    journaled: list[tuple[int | None, str]]
    request_statuses: list[int | None]  # the calls' `request` events: the call itself was never sent


def outcome(client: str, mode: Mode) -> Result:
    vendor = client.removesuffix("-unity")

    async def main() -> Result:
        lab = await build(vendor, journal=True)
        fault = TokenEndpointFault(lab.recorder.inner, lab.clock, mode)
        lab.recorder.inner = fault
        if mode == "revoked":
            for credential_id in await lab.credential_ids():
                await lab.revoke(credential_id)
        call: Callable[[], Awaitable[object]]
        if client.endswith("-unity"):
            unity = lab.client.unity
            assert unity is not None
            call = lambda: unity.magic("GetServerInfo")  # noqa: E731
        else:
            call = lambda: lab.client.connector.read("Patient", lab.patients[0])  # noqa: E731
        with pytest.raises(ConnectorError) as caught:
            await call()
        await lab.close()
        assert lab.journal is not None
        return Result(error=caught.value, token_requests=fault.token_requests,
                      retries=[e.reason for e in lab.events if isinstance(e, RetryScheduled)],
                      journaled=[(e.status, e.error) for e in lab.journal.of(TokenFailedEvent)],
                      request_statuses=[e.status for e in lab.events if isinstance(e, RequestCompleted)])

    return run_virtual(main)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_token_endpoint_503_is_a_server_error_retried_as_one(client: str) -> None:
    result = outcome(client, "503")
    assert type(result.error) is ServerError, repr(result.error)
    assert result.error.status == 503
    assert result.error.token_endpoint
    assert result.error.retryable
    assert not result.error.is_auth
    assert isinstance(result.error, IntegrationError)
    assert set(result.journaled) == {(503, "ServerError")}
    if client.endswith("-unity"):  # the Unity client makes one attempt per call
        assert result.token_requests == 1
    else:  # the connector's retry policy: three attempts, each asking for a token, backing off as for any 5xx
        assert result.token_requests == 3
        assert result.retries == ["ServerError", "ServerError"]
        assert result.error.retry_after_s == 2.0
        assert result.request_statuses == [None, None, None]  # the 503 was the token endpoint's, not the path's


@pytest.mark.parametrize("client", CLIENTS)
def test_a_token_endpoint_that_does_not_answer_is_a_timeout(client: str) -> None:
    result = outcome(client, "stall")
    assert type(result.error) is RequestTimeout, repr(result.error)
    assert result.error.token_endpoint
    assert result.error.retryable
    assert result.error.is_timeout
    assert "token request" in str(result.error)
    assert set(result.journaled) == {(None, "RequestTimeout")}
    if not client.endswith("-unity"):
        assert result.retries == ["RequestTimeout", "RequestTimeout"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_token_endpoint_refusing_connections_is_a_connection_failure(client: str) -> None:
    result = outcome(client, "refused")
    assert type(result.error) is ConnectionFailed, repr(result.error)
    assert result.error.token_endpoint
    assert result.error.retryable
    assert set(result.journaled) == {(None, "ConnectionFailed")}
    if not client.endswith("-unity"):
        assert result.retries == ["ConnectionFailed", "ConnectionFailed"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_refused_credential_is_an_auth_error_never_retried(client: str) -> None:
    result = outcome(client, "revoked")
    assert isinstance(result.error, AuthError), repr(result.error)
    assert type(result.error) is CredentialsRejected, repr(result.error)
    assert result.error.is_auth
    assert result.error.token_endpoint
    assert not result.error.retryable
    assert result.token_requests == 1
    assert result.retries == []
    [(status, code)] = result.journaled
    # each vendor's own refusal: Epic/Allscripts 400 invalid_client, Cerner 401, Medplum 400 invalid_request,
    # Unity an HTTP 200 `error:` string naming the credentials
    assert status in (200, 400, 401)
    assert code in ("invalid_client", "invalid_request")
