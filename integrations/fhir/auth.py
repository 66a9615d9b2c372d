"""OAuth 2.0 client credentials as an `httpx.Auth` flow (Medplum, Cerner, Allscripts FHIR; Epic through
`integrations.fhir.jwt_assertion.PrivateKeyJwt`).

The cache, single-flight refresh, credential fallback and the one refresh-and-resend on a 401 are the
shared `integrations.fhir.token_flow.TokenFlow` (runbook `002_437ee203264dfa64.txt §2.1`: tokens reused
until 60 s before expiry). This module says how an OAuth token is asked for and read:

- `POST` form-encoded `grant_type=client_credentials` (+ `scope`), with the client authenticated by a
  `ClientAuthMethod`: `ClientSecretPost` (Medplum, Allscripts: id and secret in the form; vendors.md
  §3, §4), `ClientSecretBasic` (Cerner: HTTP Basic; vendors.md §2), `PrivateKeyJwt` (Epic: a signed
  client assertion; vendors.md §1, §5).
- The answer is read as RFC 6749 §5.1 / §5.2: a refusal (4xx) raises `AuthError` with the OAuth
  `error` code and the status, never the `error_description` or the secret; a 5xx `ServerError`, a 429
  `RateLimited`, a 2xx without a usable token `MalformedResponse` (`token_flow.token_endpoint_error`:
  runbook 000 §4 says "check Epic status" for a 5xx, "rotate credentials" only for a refusal).
- A refusal means "this credential is refused" (try the next one, report `CredentialRejected`) when its
  code is in `rejection_errors` (default `invalid_client`, `unauthorized_client`), or when it is a 401
  without a code. Medplum refuses a wrong secret with `invalid_request` ("Invalid secret", vendors.md
  §3), so the lab's Medplum client adds that code.

Credentials come from a provider (a function, a `CredentialSource` or `RotatingCredentials`; see
`integrations.fhir.credentials`) read before every token request, so rotation needs no restart.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection
from typing import Protocol
from urllib.parse import quote_plus, urlencode

import httpx

from integrations.clock import Clock
from integrations.events import EventListener, ignore_event
from integrations.fhir.credentials import (
    ClientCredentials,
    Credential,
    CredentialSource,
    CredentialsProvider,
    RotatingCredentials,
    SigningKeyCredentials,
)
from integrations.fhir.errors import AuthError, ConnectorError
from integrations.fhir.models import CORRELATION_HEADER
from integrations.fhir.token_flow import AccessToken, TokenCache, TokenFlow, token_endpoint_error

__all__ = [
    "DEFAULT_REJECTION_ERRORS",
    "AccessToken",
    "ClientAuthMethod",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "ClientSecretBasic",
    "ClientSecretPost",
    "CredentialsProvider",
    "SigningKeyCredentials",
    "TokenCache",
]

#: OAuth error codes that mean "the client's credential was refused" (RFC 6749 §5.2).
DEFAULT_REJECTION_ERRORS = frozenset({"invalid_client", "unauthorized_client"})

_OAUTH_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # RFC 6750 b64token is narrower; anything printable is safe in a header


class ClientAuthMethod(Protocol):
    """How the client authenticates at the token endpoint (RFC 6749 §2.3)."""

    def apply(self, credentials: Credential, form: dict[str, str], headers: dict[str, str]) -> None: ...


def _secret(credentials: Credential, method: str) -> ClientCredentials:
    if not isinstance(credentials, ClientCredentials):
        raise TypeError(f"{method} needs a client secret, not a signing key")
    return credentials


class ClientSecretPost:
    """`client_id` and `client_secret` in the form body (Medplum, vendors.md §3)."""

    def __repr__(self) -> str:
        return "ClientSecretPost()"

    def apply(self, credentials: Credential, form: dict[str, str], headers: dict[str, str]) -> None:
        secret = _secret(credentials, "client_secret_post")
        form["client_id"] = secret.client_id
        form["client_secret"] = secret.client_secret


class ClientSecretBasic:
    """HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1; Cerner, vendors.md §2)."""

    def __repr__(self) -> str:
        return "ClientSecretBasic()"

    def apply(self, credentials: Credential, form: dict[str, str], headers: dict[str, str]) -> None:
        secret = _secret(credentials, "client_secret_basic")
        pair = f"{quote_plus(secret.client_id)}:{quote_plus(secret.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class ClientCredentialsAuth(TokenFlow):
    """Bearer tokens from the client credentials grant; see the module docstring. AsyncClient only."""

    def __init__(
        self,
        *,
        vendor: str,
        token_url: str,
        credentials: CredentialsProvider | CredentialSource | RotatingCredentials,
        clock: Clock,
        cache: TokenCache | None = None,
        listener: EventListener = ignore_event,
        scope: str | None = None,
        client_auth: ClientAuthMethod | None = None,
        default_expires_in_s: float = 300.0,
        rejection_errors: Collection[str] = DEFAULT_REJECTION_ERRORS,
    ) -> None:
        super().__init__(vendor=vendor, credentials=credentials, clock=clock, cache=cache, listener=listener)
        self.token_url = token_url
        self._scope = scope
        self._client_auth: ClientAuthMethod = client_auth if client_auth is not None else ClientSecretPost()
        self._default_expires_in_s = default_expires_in_s  # when the server omits expires_in (SMART suggests 300)
        self.rejection_errors = frozenset(rejection_errors)

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(vendor={self.vendor!r}, token_url={self.token_url!r})"

    def _token_request(self, credential: Credential, correlation_id: str | None) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if correlation_id is not None:
            headers[CORRELATION_HEADER] = correlation_id
        self._client_auth.apply(credential, form, headers)
        return httpx.Request("POST", self.token_url, headers=headers, content=urlencode(form).encode("ascii"))

    def _is_rejection(self, error: AuthError) -> bool:
        if error.status not in (400, 401):
            return False
        return error.oauth_error in self.rejection_errors or (error.oauth_error is None and error.status == 401)

    async def _read_token(self, response: httpx.Response, correlation_id: str | None) -> tuple[str, float]:
        await response.aread()
        status = response.status_code
        payload = _json_object(response.content)
        if not 200 <= status < 300:
            code = _oauth_error(payload)
            verb = "failed" if status >= 500 else "refused"
            raise token_endpoint_error(f"token endpoint {verb} the client credentials grant: HTTP {status}"
                                       + (f" {code}" if code else ""), vendor=self.vendor, status=status,
                                       correlation_id=correlation_id, oauth_error=code,
                                       retry_after=response.headers.get("retry-after"), now=self._clock.now())

        def malformed(what: str) -> ConnectorError:
            return token_endpoint_error(f"token endpoint answered HTTP {status} with {what}", vendor=self.vendor,
                                        status=status, correlation_id=correlation_id)

        if payload is None:
            raise malformed("a body that is not a JSON object")
        value = payload.get("access_token")
        if not isinstance(value, str) or not _TOKEN_CHARS.fullmatch(value):
            raise malformed("no usable access_token")
        token_type = payload.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise malformed("a token_type other than Bearer")
        expires_in = _expires_in(payload.get("expires_in"), self._default_expires_in_s)
        if expires_in is None:
            raise malformed("an invalid expires_in")
        return value, expires_in


def _json_object(content: bytes) -> dict[str, object] | None:
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _oauth_error(payload: dict[str, object] | None) -> str | None:
    """RFC 6749 §5.2 `error`, if it looks like an error code (never free text that might echo input)."""
    code = payload.get("error") if payload is not None else None
    return code if isinstance(code, str) and _OAUTH_ERROR_CODE.fullmatch(code) else None


def _expires_in(value: object, default: float) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not value > 0 or value == float("inf"):
        return None
    return float(value)
