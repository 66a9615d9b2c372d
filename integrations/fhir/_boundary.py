"""The one boundary where httpx and HTTP meet the connector's error tree (cf. httpx's
`map_httpcore_exceptions`): `exchange` sends one attempt and returns a `Reply` or raises a
`ConnectorError`. Nothing else in the connector catches an httpx exception or reads a status code.

| outcome                                      | raised                                  |
|----------------------------------------------|-----------------------------------------|
| `clock.timeout` expired, `httpx.TimeoutException` | RequestTimeout                     |
| `httpx.DecodingError` (bad gzip, bad charset) | MalformedResponse                      |
| other `httpx.TransportError` (refused, reset, dropped mid-body, protocol error) | ConnectionFailed |
| 2xx with a body that is not a JSON object (not JSON, truncated, nested too deep) | MalformedResponse |
| 400, 422 / 401 / 403 / 404, 410 / 409 / 412 / 429 / 5xx | per `errors.py`'s table      |
| any other status (3xx, 405, 406, 415 ...)    | UnexpectedStatus                        |

Errors the auth flow raises for the token endpoint's answers pass through unchanged (`AuthError`,
`ServerError`, ... with `token_endpoint=True`: `integrations.fhir.token_flow`). When the transport fails or
the attempt times out while the call's token request is in flight (the request carries
`TOKEN_REQUEST_PENDING`), the error is the token endpoint's: `token_endpoint=True`, and the auth flow is
told so it can journal the failed token request (`no_answer`, shared with the Unity client). The Retry-After of a
429 or 5xx is parsed here against `clock.now()`. An OperationOutcome in an error body contributes its
issue codes and texts; the rest of an error body is never kept (it may be PHI).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

import httpx

from integrations.clock import Clock
from integrations.fhir._parsing import outcome_issues
from integrations.fhir.errors import (
    AuthError,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    Forbidden,
    MalformedResponse,
    NotFound,
    OutcomeIssue,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    ServerError,
    UnexpectedStatus,
    ValidationFailed,
)
from integrations.fhir.models import JsonObject
from integrations.fhir.retry import parse_retry_after
from integrations.fhir.token_flow import TOKEN_REQUEST_PENDING

_INVALID = object()  # `_json_body`'s answer for a body that is not a JSON object

_STATUS_ERRORS: dict[int, type[ConnectorError]] = {
    400: ValidationFailed,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: NotFound,
    412: PreconditionFailed,
    422: ValidationFailed,
    429: RateLimited,
}


@dataclass(frozen=True, slots=True)
class Reply:
    """A 2xx answer: what the connector needs of it."""

    status: int
    etag: str | None
    location: str | None
    body: JsonObject | None  # None when the body was empty


async def exchange(client: httpx.AsyncClient, request: httpx.Request, *, clock: Clock, timeout_s: float,
                   vendor: str, correlation_id: str) -> Reply:
    """Send one attempt within `timeout_s` of the clock and translate the outcome."""
    try:
        async with clock.timeout(timeout_s):
            response = await client.send(request)
    except ConnectorError:
        raise
    except (TimeoutError, httpx.TransportError) as exc:
        raise no_answer(exc, request, label=request.method, timeout_s=timeout_s, vendor=vendor,
                        correlation_id=correlation_id) from exc
    return _reply(response, clock=clock, vendor=vendor, correlation_id=correlation_id)


def no_answer(exc: TimeoutError | httpx.TransportError, request: httpx.Request, *, label: str, timeout_s: float,
              vendor: str, correlation_id: str | None) -> ConnectorError:
    """The error for an attempt (`label`: "GET", "Unity GetPatient") that got no usable answer.

    A timeout is `RequestTimeout`, an undecodable body `MalformedResponse`, any other transport error
    `ConnectionFailed`; while the call's token request was in flight, they are the token endpoint's.
    """
    report = request.extensions.get(TOKEN_REQUEST_PENDING)
    token_endpoint = callable(report)
    if token_endpoint:
        label = "the token request"
    error: ConnectorError
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        error = RequestTimeout(f"no response to {label} within {timeout_s:g} s", vendor=vendor,
                               correlation_id=correlation_id, token_endpoint=token_endpoint)
    elif isinstance(exc, httpx.DecodingError):
        error = MalformedResponse(f"response body could not be decoded ({type(exc).__name__})", vendor=vendor,
                                  correlation_id=correlation_id, token_endpoint=token_endpoint)
    else:
        error = ConnectionFailed(f"{label} failed in transport ({type(exc).__name__})", vendor=vendor,
                                 correlation_id=correlation_id, token_endpoint=token_endpoint)
    if callable(report):
        report(error)
    return error


def _reply(response: httpx.Response, *, clock: Clock, vendor: str, correlation_id: str) -> Reply:
    status = response.status_code
    if 200 <= status < 300:
        body = _json_body(response.content)
        if body is _INVALID:
            raise MalformedResponse(f"HTTP {status} with a body that is not a JSON object", vendor=vendor,
                                    status=status, correlation_id=correlation_id)
        return Reply(status=status, etag=response.headers.get("etag"), location=response.headers.get("location"),
                     body=cast("JsonObject | None", body))
    reason = response.reason_phrase or "error"
    message = f"HTTP {status} {reason}"
    if status == 401:
        raise AuthError(f"{message} (the request was resent once with a fresh token)", vendor=vendor, status=status,
                        correlation_id=correlation_id)
    error_type = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else UnexpectedStatus)
    retry_after = None
    if error_type in (RateLimited, ServerError):
        retry_after = parse_retry_after(response.headers.get("retry-after"), clock.now())
    raise error_type(message, vendor=vendor, status=status, correlation_id=correlation_id,
                     retry_after_s=retry_after, issues=_issues(response.content))


def _json_body(content: bytes) -> object:
    """The parsed JSON object, None for an empty body, `_INVALID` otherwise."""
    if not content.strip():
        return None
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: nested too deep
        return _INVALID
    return payload if isinstance(payload, dict) else _INVALID


def _issues(content: bytes) -> tuple[OutcomeIssue, ...]:
    """Issue severity/code/text of an OperationOutcome body; nothing from any other body."""
    return outcome_issues(_json_body(content))
