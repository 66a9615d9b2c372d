"""The connector's one error tree. Every failure a caller sees is a `ConnectorError`, a branch of the
integration's one root (`integrations.errors.IntegrationError`).

Third-party exceptions (httpx's transport errors, `TimeoutError` from the clock) and HTTP statuses
are translated into this tree at one boundary (`integrations.fhir._boundary.exchange`); the OAuth
token endpoint's answers are translated in `integrations.fhir.token_flow` (`token_endpoint_error`),
into the same classes a FHIR call's answer would get. Nothing else raises httpx's types at a caller.

```
ConnectorError                      vendor, status | None, correlation_id, retry_after_s, token_endpoint
├── AuthError                       401 from the FHIR server (after one refresh), token endpoint refusals (4xx)
├── Forbidden                       403
├── NotFound                        404, 410 (`gone`)
├── ValidationFailed                400, 422
├── Conflict                        409
├── PreconditionFailed              412
├── RateLimited                     429 (`retry_after_s` from Retry-After)
│   └── ClientThrottled             the client's own rate limiter refused to wait longer; nothing was sent
├── ServerError                     5xx (`retry_after_s` when a 503 carries Retry-After)
├── UnexpectedStatus                any other non-2xx status (405, 406, 415, 3xx: redirects are not followed)
├── RequestTimeout                  no answer within the attempt timeout
├── ConnectionFailed                transport errors: refused, reset, dropped mid-response
├── MalformedResponse               a 2xx that is not the JSON resource asked for; an unsafe `next` link; a
│                                   token endpoint 2xx without a usable token
└── CircuitOpen                     the breaker refused the call; nothing was sent
```

Runbook `000_030ea53f0735abf7.txt §4` ("Common Error Codes") and what the connector does with each:

| Code | Meaning              | Action (runbook)         | Type               | retried | breaker failure |
|------|----------------------|--------------------------|--------------------|---------|-----------------|
| 400  | Validation error     | Check resource format    | ValidationFailed   | no      | no              |
| 401  | Auth failed          | Rotate credentials       | AuthError          | no (1)  | no              |
| 403  | Authorization denied | Check scopes             | Forbidden          | no      | no              |
| 409  | Conflict             | Duplicate order detected | Conflict           | no      | no              |
| 412  | Precondition failed  | ETag mismatch, retry (2) | PreconditionFailed | no      | no              |
| 429  | Rate limited         | Wait and retry           | RateLimited        | yes     | no              |
| 500+ | Server error         | Check Epic status        | ServerError        | yes     | yes             |

(1) The auth flow itself refreshes the token once and resends once on a 401; a second 401 surfaces.

The token endpoint's answers get the same classes, with `token_endpoint=True` (the request itself was
never sent): a 5xx is `ServerError` ("check Epic status", retried, a breaker failure), a 429 `RateLimited`,
no answer `RequestTimeout` or `ConnectionFailed`, a 2xx without a usable token `MalformedResponse`. Only a
refusal, 400 (`invalid_client`, `invalid_request` ...), 401 or another 4xx, is an `AuthError` ("rotate
credentials"): never retried, never a breaker failure.
(2) "Retry" after a 412 means re-read the resource and re-apply the change with the new version:
the caller's decision, never a blind resend of the same If-Match. `FhirConnector.update(...,
on_conflict=merge)` does exactly that when the caller passes a merge callback; without one the 412
surfaces as `PreconditionFailed`. A 409 on an If-Match update (Cerner's answer to a stale version,
reference/vendors.md §2) is treated the same way there.

Predicates follow runbook `004_bc3882054056792c.txt` "Error Handling" (`is_authentication_error`,
`is_rate_limit_error`, `is_timeout_error`): `is_auth` is true for `AuthError` only (re-authenticating
can fix it; a 403 needs different scopes, not a new token), `is_rate_limit` for `RateLimited`,
`is_timeout` for `RequestTimeout`. `retryable` says whether a retry can help: `ServerError`,
`RateLimited` (but not its `ClientThrottled`), `RequestTimeout` and `ConnectionFailed`, at the FHIR
endpoint or the token endpoint alike; never an `AuthError`. Whether a request may be *resent* also
depends on the method: see `integrations.fhir.retry`.

Messages carry the vendor, the status, the OperationOutcome issue code and text, and the correlation
id. They never carry a token, a secret, a query string or a response body.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.errors import IntegrationError


@dataclass(frozen=True, slots=True)
class OutcomeIssue:
    """One `OperationOutcome.issue`: its severity, code and human-readable text (details.text or diagnostics)."""

    severity: str
    code: str
    text: str | None


class ConnectorError(IntegrationError):
    """Root of the tree: a FHIR call to `vendor` failed."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        correlation_id: str | None = None,
        retry_after_s: float | None = None,
        issues: tuple[OutcomeIssue, ...] = (),
        token_endpoint: bool = False,
    ) -> None:
        self.message = message
        self.vendor = vendor
        self.status = status
        self.correlation_id = correlation_id
        self.retry_after_s = retry_after_s
        self.issues = issues
        self.token_endpoint = token_endpoint  # failed at the vendor's token endpoint: the call itself was not sent
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.vendor}: {self.message}"]
        if self.issues:
            first = self.issues[0]
            parts.append(f"({first.code}{': ' + first.text if first.text else ''})")
        if self.correlation_id is not None:
            parts.append(f"[correlation id {self.correlation_id}]")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vendor={self.vendor!r}, status={self.status!r}, "
                f"correlation_id={self.correlation_id!r}, message={self.message!r})")

    def for_call(self, correlation_id: str | None) -> ConnectorError:
        """The same failure, for another caller that waited on the same token request."""
        return type(self)(self.message, vendor=self.vendor, status=self.status, correlation_id=correlation_id,
                          retry_after_s=self.retry_after_s, issues=self.issues, token_endpoint=self.token_endpoint)

    @property
    def is_auth(self) -> bool:
        """Authentication failed: re-authenticating or rotating credentials may fix it (004 "Error Handling")."""
        return False

    @property
    def is_rate_limit(self) -> bool:
        """The vendor throttled the client: wait (`retry_after_s`) and retry."""
        return False

    @property
    def is_timeout(self) -> bool:
        """No answer in time: use an alternate system or cached data (004 "Error Handling")."""
        return False

    @property
    def retryable(self) -> bool:
        """A later identical attempt may succeed. The method decides whether resending is safe."""
        return False


class AuthError(ConnectorError):
    """401 from the FHIR server after one token refresh, or the token endpoint refused the credentials (4xx).

    Never retryable: a retry presents the same credentials. A token endpoint that is down is not an
    `AuthError` but a `ServerError`, `RequestTimeout` or `ConnectionFailed` (module docstring).
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        correlation_id: str | None = None,
        oauth_error: str | None = None,
        token_endpoint: bool = False,
    ) -> None:
        self.oauth_error = oauth_error  # RFC 6749 §5.2 `error` code, e.g. "invalid_client"; never the description
        super().__init__(message, vendor=vendor, status=status, correlation_id=correlation_id,
                         token_endpoint=token_endpoint)

    @property
    def is_auth(self) -> bool:
        return True

    def for_call(self, correlation_id: str | None) -> AuthError:
        """The same failure, for another caller that waited on the same token request."""
        return AuthError(self.message, vendor=self.vendor, status=self.status, correlation_id=correlation_id,
                         oauth_error=self.oauth_error, token_endpoint=self.token_endpoint)


class Forbidden(ConnectorError):
    """403: authenticated, but the client's scopes or the server's policy deny the request."""


class NotFound(ConnectorError):
    """404, or 410 for a deleted resource (`gone`)."""

    @property
    def gone(self) -> bool:
        return self.status == 410


class ValidationFailed(ConnectorError):
    """400 or 422: the server rejected the request or resource as invalid."""


class Conflict(ConnectorError):
    """409: a duplicate, or (Cerner) an update against an out-of-date version."""


class PreconditionFailed(ConnectorError):
    """412: the If-Match version is not the current one (or If-None-Exist matched several)."""


class RateLimited(ConnectorError):
    """429: throttled; `retry_after_s` is the server's Retry-After in seconds, when it gave one."""

    @property
    def is_rate_limit(self) -> bool:
        return True

    @property
    def retryable(self) -> bool:
        return True


class ClientThrottled(RateLimited):
    """The client-side rate limiter (`integrations.fhir.ratelimit`) would have made the call wait longer than
    its `max_wait_s`: nothing was sent. `retry_after_s` is how long until a slot frees up.

    `is_rate_limit` is true (the caller's answer is the same as to a 429: wait, or fall back), but it is
    not `retryable` by the connector: a retry would wait again, beyond the wait the caller bounded.
    """

    @property
    def retryable(self) -> bool:
        return False


class ServerError(ConnectorError):
    """5xx: the vendor failed; `retry_after_s` when a 503 carried Retry-After."""

    @property
    def retryable(self) -> bool:
        return True


class UnexpectedStatus(ConnectorError):
    """A status outside the table above (e.g. 405, 406, 415, or a 3xx: redirects are never followed)."""


class RequestTimeout(ConnectorError):
    """The attempt got no complete answer within its timeout (on the injected clock)."""

    @property
    def is_timeout(self) -> bool:
        return True

    @property
    def retryable(self) -> bool:
        return True


class ConnectionFailed(ConnectorError):
    """A transport error: connection refused or reset, or dropped before a complete response."""

    @property
    def retryable(self) -> bool:
        return True


class MalformedResponse(ConnectorError):
    """A 2xx whose body is not the JSON resource asked for, or a paging link that is unsafe to follow."""


class CircuitOpen(ConnectorError):
    """The circuit breaker refused the call: nothing was sent. `retry_after_s`: time left in OPEN, if OPEN."""
