"""The auth flows' own error types, in the connector's one tree (`integrations.fhir.errors`).

```
ConnectorError
├── AuthError
│   └── CredentialsRejected     every credential the provider offers was refused by the vendor (revoked,
│                               wrong, not yet registered); no token request is sent again until the
│                               provider offers a new credential or `recheck_after_s` passes
├── ConfigurationError          start-up validation failed: missing values, placeholder or short secrets,
│                               plain-HTTP URLs outside the lab (runbook 002_437ee203264dfa64.txt §2.5)
└── UnityCallFailed             Allscripts Unity answered a MagicJson call with an error row (HTTP 200)
```

None of them is `retryable`, and none counts as a provider failure for the circuit breaker
(`integrations.fhir.breaker.provider_failure` never counts an `AuthError`): a refused credential is this
client's problem, not the vendor's health, so it must not open the breaker and hide the real cause behind
`CircuitOpen`. A token endpoint that is down is not in this file's tree at all: it raises `ServerError`,
`RequestTimeout` or `ConnectionFailed` (`integrations.fhir.token_flow`). Messages name fields and
credential labels, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence

from integrations.fhir.errors import AuthError, ConnectorError


class CredentialsRejected(AuthError):
    """The vendor refused every credential on offer (`credentials`: their labels, newest first)."""

    def __init__(self, message: str, *, vendor: str, credentials: Sequence[str], status: int | None = None,
                 correlation_id: str | None = None, oauth_error: str | None = None, sent: bool = True) -> None:
        self.credentials = tuple(credentials)
        self.sent = sent  # False: refused before any request, because every credential was already known bad
        super().__init__(message, vendor=vendor, status=status, correlation_id=correlation_id,
                         oauth_error=oauth_error, token_endpoint=True)

    def for_call(self, correlation_id: str | None) -> CredentialsRejected:
        return CredentialsRejected(self.message, vendor=self.vendor, credentials=self.credentials,
                                   status=self.status, correlation_id=correlation_id, oauth_error=self.oauth_error,
                                   sent=self.sent)

    @property
    def retryable(self) -> bool:
        return False  # a retry would present the same refused credentials


class ConfigurationError(ConnectorError):
    """Start-up configuration is unusable; `problems` lists each as "FIELD: what is wrong" (never a value)."""

    def __init__(self, vendor: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems), vendor=vendor)


class UnityCallFailed(ConnectorError):
    """A Unity MagicJson call answered HTTP 200 with an `Error` row other than an expired token or a limit."""
