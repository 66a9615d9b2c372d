"""The one error tree: every status and transport failure maps to its type (runbook
000_030ea53f0735abf7.txt §4), with the predicates of runbook 004_bc3882054056792c.txt, and no PHI in messages."""

from __future__ import annotations

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import RequestCompleted
from integrations.fhir import (
    AuthError,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    Forbidden,
    MalformedResponse,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    UnexpectedStatus,
    ValidationFailed,
)
from tests.integrations.fakes import FakeVendor, Handler, fhir_json, make_kit, outcome, patient

ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def failing_read(answer: Handler | httpx.Response, **kit_args: object) -> tuple[ConnectorError, list[object]]:
    async def main() -> tuple[ConnectorError, list[object]]:
        vendor = FakeVendor(VirtualClock())
        if isinstance(answer, httpx.Response):
            vendor.default = lambda request: answer
        else:
            vendor.default = lambda request: httpx.Response(599)
            vendor.script.append(answer)
        kit = make_kit(vendor, retry=ONE_ATTEMPT, **kit_args)  # type: ignore[arg-type]
        with pytest.raises(ConnectorError) as caught:
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return caught.value, kit.of(RequestCompleted)

    return run_virtual(main)


@pytest.mark.parametrize(("status", "error_type"), [
    (400, ValidationFailed), (401, AuthError), (403, Forbidden), (404, NotFound), (405, UnexpectedStatus),
    (409, Conflict), (410, NotFound), (412, PreconditionFailed), (422, ValidationFailed), (429, RateLimited),
    (500, ServerError), (502, ServerError), (503, ServerError), (504, ServerError), (302, UnexpectedStatus),
])
def test_status_maps_to_its_error(status: int, error_type: type[ConnectorError]) -> None:
    error, completed = failing_read(outcome(status, "processing", "Something went wrong"))
    assert type(error) is error_type
    assert error.status == status
    assert error.vendor == "fake"
    assert f"HTTP {status}" in str(error)
    assert [(e.status, e.error) for e in completed if isinstance(e, RequestCompleted)] == [
        (status, error_type.__name__)]


def test_operation_outcome_issue_is_in_the_message_but_not_other_bodies() -> None:
    error, _ = failing_read(outcome(422, "business-rule", "birthDate is in the future"))
    assert "business-rule: birthDate is in the future" in str(error)
    assert error.issues[0].code == "business-rule"
    error, _ = failing_read(fhir_json(409, patient("p9")))  # a body that is a resource: never echoed
    assert "Doe" not in str(error)
    assert "Jane" not in repr(error)
    assert error.issues == ()


def test_timeout_maps_to_request_timeout_after_the_attempt_timeout() -> None:
    clock = VirtualClock()

    async def hang(request: httpx.Request) -> httpx.Response:
        await clock.sleep(3600)
        return fhir_json(200, patient())

    error, completed = failing_read(hang, clock=clock, attempt_timeout_s=7.5)
    assert type(error) is RequestTimeout
    assert error.status is None
    assert [(e.duration_s, e.status, e.error) for e in completed if isinstance(e, RequestCompleted)] == [
        (7.5, None, "RequestTimeout")]


@pytest.mark.parametrize("exc", [
    httpx.ConnectError("refused"), httpx.RemoteProtocolError("peer closed connection without response"),
    httpx.ReadError("connection reset"),
])
def test_dropped_connections_map_to_connection_failed(exc: Exception) -> None:
    async def drop(request: httpx.Request) -> httpx.Response:
        raise exc

    error, completed = failing_read(drop)
    assert type(error) is ConnectionFailed
    assert type(exc).__name__ in str(error)
    assert error.__cause__ is exc
    assert [e.error for e in completed if isinstance(e, RequestCompleted)] == ["ConnectionFailed"]


def test_read_timeout_from_the_transport_is_a_request_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out")

    error, _ = failing_read(slow)
    assert type(error) is RequestTimeout


@pytest.mark.parametrize("response", [
    httpx.Response(200, content=b'{"resourceType": "Patient", "id": '),  # truncated JSON
    httpx.Response(200, content=b"<html>maintenance</html>"),
    httpx.Response(200, content=b"[1, 2]"),
    fhir_json(200, {"resourceType": "Observation", "id": "p1"}),  # not what was asked for
    fhir_json(200, {"resourceType": "Patient", "id": "someone-else"}),
    fhir_json(200, {"resourceType": "Patient"}),
    httpx.Response(200),
])
def test_malformed_bodies_map_to_malformed_response(response: httpx.Response) -> None:
    error, completed = failing_read(response)
    assert type(error) is MalformedResponse
    assert error.status == 200
    assert [e.error for e in completed if isinstance(e, RequestCompleted)] == ["MalformedResponse"]


def test_rate_limited_carries_retry_after() -> None:
    error, _ = failing_read(httpx.Response(429, headers={"Retry-After": "12"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 12.0


@pytest.mark.parametrize(("error", "predicates"), [
    (AuthError("x", vendor="v", status=401), (True, False, False, False)),
    (AuthError("x", vendor="v", status=400, token_endpoint=True, oauth_error="invalid_client"),
     (True, False, False, False)),
    (ServerError("x", vendor="v", status=503, token_endpoint=True), (False, False, False, True)),
    (Forbidden("x", vendor="v", status=403), (False, False, False, False)),
    (RateLimited("x", vendor="v", status=429), (False, True, False, True)),
    (RequestTimeout("x", vendor="v"), (False, False, True, True)),
    (ServerError("x", vendor="v", status=500), (False, False, False, True)),
    (ConnectionFailed("x", vendor="v"), (False, False, False, True)),
    (MalformedResponse("x", vendor="v"), (False, False, False, False)),
    (PreconditionFailed("x", vendor="v", status=412), (False, False, False, False)),
])
def test_predicates(error: ConnectorError, predicates: tuple[bool, bool, bool, bool]) -> None:
    assert (error.is_auth, error.is_rate_limit, error.is_timeout, error.retryable) == predicates


def test_str_and_repr_name_vendor_status_and_correlation_id() -> None:
    error = NotFound("HTTP 410 Gone", vendor="medplum", status=410, correlation_id="c-1")
    assert str(error) == "medplum: HTTP 410 Gone [correlation id c-1]"
    assert repr(error) == "NotFound(vendor='medplum', status=410, correlation_id='c-1', message='HTTP 410 Gone')"
    assert error.gone
