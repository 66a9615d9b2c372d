"""OAuth 2.0 client credentials as an `httpx.Auth` flow, with a token cache on the injected clock.

Numbers from runbook `002_437ee203264dfa64.txt §2.1` ("OAuth2 Token Caching: Reuses tokens until 60s
before expiry"): a token is attached only while more than `margin_s` (60 s) of its lifetime is left;
from then on the next call refreshes it first. Lifetimes are measured on `clock.monotonic()` from
when the token request was *sent*, so the request's own latency is on the safe side. A token whose
whole lifetime is shorter than twice the margin is used for the first half of its lifetime (the
margin is capped at half the lifetime); otherwise it could never be used at all.

The flow (`async_auth_flow`, `response = yield request`, as httpx's docs describe):

1. Attach the cached token. If there is none, or it is inside the margin, refresh first. Refresh is
   single-flight: an `asyncio.Lock` plus a re-check, so N concurrent callers cause one token request;
   callers that waited on a token request that failed get the same `AuthError`, not N more requests.
2. The token request is yielded through the same flow, so it goes through the connector's transport
   (faults, proxy, virtual time) and its attempt timeout. Medplum style: `POST` form-encoded
   `grant_type=client_credentials` with `client_id` and `client_secret` in the form
   (`ClientSecretPost`); `ClientSecretBasic` (Cerner) is the seam for other vendors' client
   authentication (vendors.md §2, §3). JWT assertions (Epic) plug in at the same seam later.
3. On a 401 from the FHIR server: invalidate that token, refresh once, resend once. A second 401 is
   returned to the connector, which raises `AuthError`. There is no loop.
4. A token past its expiry is never attached (checked again right before every send).

Token endpoint answers are mapped here (OAuth's protocol, RFC 6749 §5.2), not by the connector:
a refusal or an unusable answer raises `AuthError` with the OAuth `error` code and status, never
the `error_description` or the secret. Transport errors on the way to the token endpoint propagate
to the connector's boundary like any other (`ConnectionFailed`, `RequestTimeout`: retryable).
Credentials come from a `CredentialsProvider` called for every token request, so rotation needs no
restart. Emits `TokenIssued` and `TokenRequestFailed`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote_plus, urlencode

import httpx

from integrations.clock import Clock
from integrations.events import EventListener, TokenIssued, TokenRequestFailed, ignore_event
from integrations.fhir.errors import AuthError
from integrations.fhir.models import CORRELATION_HEADER

logger = logging.getLogger(__name__)

_OAUTH_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # RFC 6750 b64token is narrower; anything printable is safe in a header


@dataclass(frozen=True, slots=True, repr=False)
class ClientCredentials:
    """A client id and secret; the secret never appears in a repr or str."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret='***')"


#: Returns the credentials to use now; called for every token request (rotation without restart).
CredentialsProvider = Callable[[], ClientCredentials]


@dataclass(frozen=True, slots=True, repr=False)
class AccessToken:
    """A bearer token and when it expires on the clock's monotonic time base."""

    value: str
    expires_in_s: float
    requested_at: float

    @property
    def expires_at(self) -> float:
        return self.requested_at + self.expires_in_s

    def __repr__(self) -> str:
        return f"AccessToken(value='***', expires_at={self.expires_at!r})"


class TokenCache:
    """One vendor client's current token, usable until `margin_s` before it expires (002 §2.1)."""

    def __init__(self, clock: Clock, margin_s: float = 60.0) -> None:
        if margin_s < 0:
            raise ValueError("margin_s must not be negative")
        self._clock = clock
        self.margin_s = margin_s
        self._token: AccessToken | None = None
        self.issued = 0  # tokens stored so far: 0 means the next one is the "initial" token

    def __repr__(self) -> str:
        return f"TokenCache(margin_s={self.margin_s!r}, has_token={self._token is not None}, issued={self.issued})"

    def usable_until(self, token: AccessToken) -> float:
        """Monotonic time from which `token` is no longer handed out."""
        return token.expires_at - min(self.margin_s, token.expires_in_s / 2)

    def get(self) -> AccessToken | None:
        """The cached token if it may still be used now, else None."""
        token = self._token
        if token is None or self._clock.monotonic() >= self.usable_until(token):
            return None
        return token

    def store(self, value: str, expires_in_s: float, requested_at: float) -> AccessToken:
        token = AccessToken(value=value, expires_in_s=expires_in_s, requested_at=requested_at)
        self._token = token
        self.issued += 1
        return token

    def invalidate(self, token: AccessToken | None = None) -> None:
        """Drop the cached token (only if it is still `token`, when one is given)."""
        if token is None or self._token is token:
            self._token = None


class ClientAuthMethod(Protocol):
    """How the client authenticates at the token endpoint (RFC 6749 §2.3)."""

    def apply(self, credentials: ClientCredentials, form: dict[str, str], headers: dict[str, str]) -> None: ...


class ClientSecretPost:
    """`client_id` and `client_secret` in the form body (Medplum, vendors.md §3)."""

    def apply(self, credentials: ClientCredentials, form: dict[str, str], headers: dict[str, str]) -> None:
        form["client_id"] = credentials.client_id
        form["client_secret"] = credentials.client_secret


class ClientSecretBasic:
    """HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1; Cerner, vendors.md §2)."""

    def apply(self, credentials: ClientCredentials, form: dict[str, str], headers: dict[str, str]) -> None:
        pair = f"{quote_plus(credentials.client_id)}:{quote_plus(credentials.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")


@dataclass(slots=True)
class _Refresh:
    request: httpx.Request
    reason: str  # "initial", "expiring", "rejected"
    requested_at: float
    correlation_id: str | None


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from the client credentials grant; see the module docstring. AsyncClient only."""

    def __init__(
        self,
        *,
        vendor: str,
        token_url: str,
        credentials: CredentialsProvider,
        clock: Clock,
        cache: TokenCache | None = None,
        listener: EventListener = ignore_event,
        scope: str | None = None,
        client_auth: ClientAuthMethod | None = None,
        default_expires_in_s: float = 300.0,
    ) -> None:
        self.vendor = vendor
        self.token_url = token_url
        self.cache = cache if cache is not None else TokenCache(clock)
        self._credentials = credentials
        self._clock = clock
        self._listener = listener
        self._scope = scope
        self._client_auth: ClientAuthMethod = client_auth if client_auth is not None else ClientSecretPost()
        self._default_expires_in_s = default_expires_in_s  # when the server omits expires_in (SMART suggests 300)
        self._lock = asyncio.Lock()
        self._refreshes = 0  # token requests finished, successful or not
        self._last_failure: AuthError | None = None

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(vendor={self.vendor!r}, token_url={self.token_url!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentialsAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover  (makes this a generator, as httpx expects)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        correlation_id = request.headers.get(CORRELATION_HEADER)
        token = self.cache.get()
        if token is None:
            seen = self._refreshes
            async with self._lock:
                token = self.cache.get()
                if token is None:
                    self._raise_shared_failure(seen, correlation_id)
                    refresh = self._begin("initial" if self.cache.issued == 0 else "expiring", correlation_id)
                    try:
                        token_response = yield refresh.request
                    except GeneratorExit:
                        self._no_response(refresh)
                        raise
                    token = await self._finish(refresh, token_response)
        response = yield self._authorize(request, token, correlation_id)
        if response.status_code != 401:
            return
        seen = self._refreshes
        async with self._lock:
            current = self.cache.get()
            if current is None or current is token:
                self.cache.invalidate(token)
                self._raise_shared_failure(seen, correlation_id)
                refresh = self._begin("rejected", correlation_id)
                try:
                    token_response = yield refresh.request
                except GeneratorExit:
                    self._no_response(refresh)
                    raise
                token = await self._finish(refresh, token_response)
            else:
                token = current  # another caller already replaced the rejected token
        yield self._authorize(request, token, correlation_id)  # resent once; a second 401 is the caller's

    # -- internals ---------------------------------------------------------------------------------

    def _authorize(self, request: httpx.Request, token: AccessToken, correlation_id: str | None) -> httpx.Request:
        if self._clock.monotonic() >= token.expires_at:
            raise AuthError("access token expired before it could be sent", vendor=self.vendor,
                            correlation_id=correlation_id)
        request.headers["Authorization"] = f"Bearer {token.value}"
        return request

    def _raise_shared_failure(self, seen: int, correlation_id: str | None) -> None:
        if self._refreshes != seen and self._last_failure is not None:
            raise self._last_failure.for_call(correlation_id)

    def _begin(self, reason: str, correlation_id: str | None) -> _Refresh:
        try:
            credentials = self._credentials()
        except Exception as exc:
            # `from None`: the provider's own message might quote the secret.
            raise AuthError(f"credentials provider failed ({type(exc).__name__})", vendor=self.vendor,
                            correlation_id=correlation_id) from None
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if correlation_id is not None:
            headers[CORRELATION_HEADER] = correlation_id
        self._client_auth.apply(credentials, form, headers)
        request = httpx.Request("POST", self.token_url, headers=headers, content=urlencode(form).encode("ascii"))
        return _Refresh(request=request, reason=reason, requested_at=self._clock.monotonic(),
                        correlation_id=correlation_id)

    def _no_response(self, refresh: _Refresh) -> None:
        """The token request got no response (transport error, timeout or cancellation)."""
        self._refreshes += 1
        self._last_failure = None  # a transport failure is not shared: waiters try for themselves
        logger.warning("%s token request got no response", self.vendor)
        self._listener(TokenRequestFailed(vendor=self.vendor, status=None, error="ConnectionFailed"))

    async def _finish(self, refresh: _Refresh, response: httpx.Response) -> AccessToken:
        try:
            token = await self._parse(refresh, response)
        except AuthError as exc:
            self._refreshes += 1
            self._last_failure = exc
            logger.warning("%s token request failed: status %s, error %s", self.vendor, exc.status,
                           exc.oauth_error or type(exc).__name__)
            self._listener(TokenRequestFailed(vendor=self.vendor, status=exc.status,
                                              error=exc.oauth_error or _failure_name(exc.status or 0)))
            raise
        except BaseException:
            self._refreshes += 1
            self._last_failure = None
            self._listener(TokenRequestFailed(vendor=self.vendor, status=response.status_code,
                                              error="ConnectionFailed"))
            raise
        self._refreshes += 1
        self._last_failure = None
        logger.info("%s access token issued (%s), expires in %.0f s", self.vendor, refresh.reason, token.expires_in_s)
        self._listener(TokenIssued(vendor=self.vendor, expires_in_s=token.expires_in_s,
                                   refresh=refresh.reason != "initial", reason=refresh.reason))
        return token

    async def _parse(self, refresh: _Refresh, response: httpx.Response) -> AccessToken:
        await response.aread()
        status = response.status_code
        payload = _json_object(response.content)
        if not 200 <= status < 300:
            code = _oauth_error(payload)
            raise AuthError(f"token endpoint refused the client credentials grant: HTTP {status}"
                            + (f" {code}" if code else ""), vendor=self.vendor, status=status,
                            correlation_id=refresh.correlation_id, oauth_error=code, token_endpoint=True)

        def malformed(what: str) -> AuthError:
            return AuthError(f"token endpoint answered HTTP {status} with {what}", vendor=self.vendor, status=status,
                             correlation_id=refresh.correlation_id, token_endpoint=True)

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
        token = self.cache.store(value, expires_in, refresh.requested_at)
        if self._clock.monotonic() >= token.expires_at:
            self.cache.invalidate(token)
            raise malformed("a token that expired before the response arrived")
        return token


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


def _failure_name(status: int) -> str:
    """The connector error class name for a token endpoint status without an OAuth error code."""
    if 200 <= status < 300:
        return "MalformedResponse"
    if status == 429:
        return "RateLimited"
    if status >= 500:
        return "ServerError"
    return "AuthError"
