"""Journal events of the FHIR connector (`integrations.fhir`): requests, retries, the breaker, tokens,
credentials, the client-side rate limiter and version conflicts. URL paths, statuses, error class names
and labels only: never a token, a secret, a query string or a resource body."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event
from integrations.events import (
    BreakerTransitioned,
    CredentialRejected,
    IntegrationEvent,
    RequestCompleted,
    RequestThrottled,
    RetryScheduled,
    TokenIssued,
    TokenRequestFailed,
    VersionConflict,
)


class RequestEvent(Event):
    kind: Literal["request"] = "request"
    vendor: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    attempt: int
    error: str | None
    correlation_id: str


class RetryEvent(Event):
    kind: Literal["retry.scheduled"] = "retry.scheduled"
    vendor: str
    attempt: int
    delay_s: float
    reason: str
    retry_after_s: float | None


class BreakerEvent(Event):
    kind: Literal["breaker.transition"] = "breaker.transition"
    breaker: str
    from_state: str
    to_state: str
    failure_rate: float | None
    calls: int
    slow_call_rate: float | None = None
    manual: bool = False  # an operator's transition_to / force_open / disable / reset


class TokenIssuedEvent(Event):
    kind: Literal["token.issued"] = "token.issued"
    vendor: str
    expires_in_s: float
    reason: str


class TokenRefreshedEvent(Event):
    kind: Literal["token.refreshed"] = "token.refreshed"
    vendor: str
    expires_in_s: float
    reason: str


class TokenFailedEvent(Event):
    """A token request failed (integrations.fhir.token_flow). A 5xx is `ServerError`, a 429 `RateLimited`, a 2xx
    without a usable token `MalformedResponse`: the vendor's fault, as on a FHIR call (runbook 000 §4); only a
    refusal (400, 401, another 4xx) names the credentials."""

    kind: Literal["token.failed"] = "token.failed"
    vendor: str
    status: int | None  # the token endpoint's HTTP status; None when it did not answer (timeout, transport error)
    error: str  # the OAuth error code of a refusal (`invalid_client`), else the error class name (`ServerError`)


class CredentialRejectedEvent(Event):
    """The vendor refused one of the integration's credentials (integrations.fhir.token_flow): audit-worthy.
    Names the credential by its label, never its value; `fallback` True when another one was left to try."""

    kind: Literal["credential.rejected"] = "credential.rejected"
    vendor: str
    credential: str
    status: int | None
    error: str
    fallback: bool


class ThrottledEvent(Event):
    """The client-side rate limiter held a call back `wait_s` (or refused it: nothing was sent)."""

    kind: Literal["request.throttled"] = "request.throttled"
    vendor: str
    wait_s: float
    limit: int
    window_s: float
    refused: bool
    correlation_id: str


class VersionConflictEvent(Event):
    """An If-Match update met a stale version (412, or Cerner's 409); `merged`: it is being sent again."""

    kind: Literal["request.version_conflict"] = "request.version_conflict"
    vendor: str
    resource_type: str
    status: int
    attempt: int
    merged: bool
    correlation_id: str | None


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def connector_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for a connector event at scenario time `t`, else None."""
    if isinstance(event, RequestCompleted):
        return RequestEvent(t=t, vendor=event.vendor, method=event.method, path=event.path, status=event.status,
                            duration_ms=round(event.duration_s * 1000, 3), attempt=event.attempt,
                            error=event.error, correlation_id=event.correlation_id)
    if isinstance(event, RetryScheduled):
        return RetryEvent(t=t, vendor=event.vendor, attempt=event.attempt, delay_s=round(event.delay_s, 6),
                          reason=event.reason, retry_after_s=event.retry_after_s)
    if isinstance(event, BreakerTransitioned):
        return BreakerEvent(t=t, breaker=event.name, from_state=event.from_state.value,
                            to_state=event.to_state.value, failure_rate=_rate(event.failure_rate), calls=event.calls,
                            slow_call_rate=_rate(event.slow_call_rate), manual=event.manual)
    if isinstance(event, TokenIssued):
        cls = TokenRefreshedEvent if event.refresh else TokenIssuedEvent
        return cls(t=t, vendor=event.vendor, expires_in_s=event.expires_in_s, reason=event.reason)
    if isinstance(event, TokenRequestFailed):
        return TokenFailedEvent(t=t, vendor=event.vendor, status=event.status, error=event.error)
    if isinstance(event, CredentialRejected):
        return CredentialRejectedEvent(t=t, vendor=event.vendor, credential=event.credential, status=event.status,
                                       error=event.error, fallback=event.fallback)
    if isinstance(event, RequestThrottled):
        return ThrottledEvent(t=t, vendor=event.vendor, wait_s=round(event.wait_s, 6), limit=event.limit,
                              window_s=event.window_s, refused=event.refused, correlation_id=event.correlation_id)
    if isinstance(event, VersionConflict):
        return VersionConflictEvent(t=t, vendor=event.vendor, resource_type=event.resource_type, status=event.status,
                                    attempt=event.attempt, merged=event.merged, correlation_id=event.correlation_id)
    return None
