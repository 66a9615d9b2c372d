"""The token cache and the `httpx.Auth` flow every vendor's auth shares (OAuth, JWT assertion, Unity).

Numbers from runbook `002_437ee203264dfa64.txt §2.1` ("OAuth2 Token Caching: Reuses tokens until 60s
before expiry"): a token is attached only while more than `margin_s` (60 s) of its lifetime is left;
from then on the next call refreshes it first. Lifetimes are measured on `clock.monotonic()` from
when the token request was *sent*, so the request's own latency is on the safe side. A token whose
whole lifetime is shorter than twice the margin is used for the first half of its lifetime (the
margin is capped at half the lifetime); otherwise it could never be used at all.

`TokenFlow.async_auth_flow` (`response = yield request`, as httpx's docs describe):

1. Attach the cached token. If there is none, or it is inside the margin, refresh first. Refresh is
   single-flight: an `asyncio.Lock` plus a re-check, so N concurrent callers cause one token request;
   callers that waited on a token request that was answered with a failure get the same error, not N
   more requests.
2. A refresh walks the credentials on offer (`RotatingCredentials`, newest first). The vendor refusing
   one (`_is_rejection`: revoked, wrong) marks it rejected, emits `CredentialRejected` and tries the
   next: the old credential is the fallback during a rotation overlap. When all are refused:
   `CredentialsRejected`; while every credential on offer is marked rejected, calls fail at once
   without a token request (no retry storm) until a new credential is offered or the recheck time passes.
3. The token request is yielded through the same flow, so it goes through the connector's transport
   (faults, proxy, virtual time) and its attempt timeout.
4. When the server refuses the token (`_token_refused`: a 401; Unity: an expired-token error row),
   refresh once and resend once. A second refusal is returned to the caller. There is no loop.
5. A token past its expiry is never attached (checked again right before every send).

What a failed token request raises (`token_endpoint_error`; runbook `000_030ea53f0735abf7.txt §4`):
the class a FHIR call's answer would get, with `token_endpoint=True`, so a token endpoint that is down
reads "check the vendor's status", not "rotate credentials":

| token endpoint answer                         | raised            | retried | breaker failure |
|-----------------------------------------------|-------------------|---------|-----------------|
| 400 / 401 / other 4xx (`invalid_client` ...)  | AuthError         | no      | no              |
| 429                                           | RateLimited       | yes     | no              |
| 5xx                                           | ServerError       | yes     | yes             |
| 2xx without a usable token                    | MalformedResponse | no      | yes             |
| no answer in time / transport error           | RequestTimeout / ConnectionFailed (at the boundary) | yes | yes |
| a token that expired before it arrived        | RequestTimeout    | yes     | yes             |

Transport errors and timeouts on the way to the token endpoint propagate to the connector's boundary
(`integrations.fhir._boundary`) like any other; while a token request is in flight the call's request
carries `TOKEN_REQUEST_PENDING`, so the boundary marks the error `token_endpoint=True` and reports it
here (a `TokenRequestFailed` with no status). Emits `TokenIssued`, `TokenRequestFailed` and
`CredentialRejected`; never a token or a secret.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from datetime import datetime

import httpx

from integrations.clock import Clock
from integrations.events import CredentialRejected, EventListener, TokenIssued, TokenRequestFailed, ignore_event
from integrations.fhir.auth_errors import ConfigurationError, CredentialsRejected
from integrations.fhir.credentials import (
    Candidate,
    Credential,
    CredentialSource,
    CredentialsProvider,
    RotatingCredentials,
)
from integrations.fhir.errors import (
    AuthError,
    ConnectorError,
    MalformedResponse,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from integrations.fhir.models import CORRELATION_HEADER
from integrations.fhir.retry import parse_retry_after

logger = logging.getLogger(__name__)

#: `httpx.Request.extensions` key set on a call's request while its token request is in flight; the value is
#: a `NoAnswerReport`, which the connector's boundary calls with the error it raised for that request.
TOKEN_REQUEST_PENDING = "ehrlab.token_request_pending"

NoAnswerReport = Callable[[ConnectorError], None]


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

    def peek(self) -> AccessToken | None:
        """The cached token even inside the margin (for retiring it), else None."""
        return self._token

    def store(self, value: str, expires_in_s: float, requested_at: float) -> AccessToken:
        token = AccessToken(value=value, expires_in_s=expires_in_s, requested_at=requested_at)
        self._token = token
        self.issued += 1
        return token

    def invalidate(self, token: AccessToken | None = None) -> None:
        """Drop the cached token (only if it is still `token`, when one is given)."""
        if token is None or self._token is token:
            self._token = None


def token_endpoint_error(message: str, *, vendor: str, status: int, correlation_id: str | None,
                         oauth_error: str | None = None, retry_after: str | None = None,
                         now: datetime | None = None) -> ConnectorError:
    """The error for a token endpoint's answer that carries no usable token (module docstring's table).

    `retry_after`: the answer's Retry-After header, read against `now` for a 429 or 5xx.
    """
    if 200 <= status < 300:
        return MalformedResponse(message, vendor=vendor, status=status, correlation_id=correlation_id,
                                 token_endpoint=True)
    if status == 429 or status >= 500:
        wait = parse_retry_after(retry_after, now) if now is not None else None
        cls = RateLimited if status == 429 else ServerError
        return cls(message, vendor=vendor, status=status, correlation_id=correlation_id, retry_after_s=wait,
                   token_endpoint=True)
    return AuthError(message, vendor=vendor, status=status, correlation_id=correlation_id, oauth_error=oauth_error,
                     token_endpoint=True)


def failure_name(error: ConnectorError) -> str:
    """What a token request's failure is called in events: the OAuth error code, else the class name."""
    oauth_error = error.oauth_error if isinstance(error, AuthError) else None
    return oauth_error or type(error).__name__


class TokenFlow(httpx.Auth, ABC):
    """Cached tokens, single-flight refresh over rotating credentials, one resend; see the module docstring.

    Subclasses say how a token is requested and read (`_token_request`, `_read_token`, raising
    `token_endpoint_error`'s classes), which refusals
    mean "this credential is refused" (`_is_rejection`), how a token is attached (`_attach`) and how a
    refused token looks (`_token_refused`). AsyncClient only.
    """

    def __init__(self, *, vendor: str, credentials: CredentialsProvider | CredentialSource | RotatingCredentials,
                 clock: Clock, cache: TokenCache | None = None, listener: EventListener = ignore_event) -> None:
        self.vendor = vendor
        self.cache = cache if cache is not None else TokenCache(clock)
        self.credentials = RotatingCredentials.wrap(credentials, clock, vendor=vendor)
        self._clock = clock
        self._listener = listener
        self._lock = asyncio.Lock()
        self._refreshes = 0  # token requests settled, successful or not
        self._last_failure: ConnectorError | None = None

    # -- what a vendor's flow supplies -------------------------------------------------------------

    @abstractmethod
    def _token_request(self, credential: Credential, correlation_id: str | None) -> httpx.Request:
        """The request that asks for a token with `credential`."""

    @abstractmethod
    async def _read_token(self, response: httpx.Response, correlation_id: str | None) -> tuple[str, float]:
        """(token, lifetime in seconds) from the token endpoint's answer, else raise `token_endpoint_error(...)`."""

    @abstractmethod
    def _is_rejection(self, error: AuthError) -> bool:
        """True when `error` says the credential itself was refused (the next one may work)."""

    def _attach(self, request: httpx.Request, token: AccessToken) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token.value}"
        return request

    async def _token_refused(self, response: httpx.Response) -> bool:
        return response.status_code == 401

    # -- the flow ------------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError(f"{type(self).__name__} works with httpx.AsyncClient only")
        yield request  # pragma: no cover  (makes this a generator, as httpx expects)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        correlation_id = request.headers.get(CORRELATION_HEADER)
        refused: AccessToken | None = None
        for sent in range(2):
            token = self.cache.get()
            if token is None or token is refused:
                seen = self._refreshes
                async with self._lock:
                    token = self.cache.get()
                    if token is None or token is refused:
                        if refused is not None:
                            self.cache.invalidate(refused)
                        self._raise_shared_failure(seen, correlation_id)
                        reason = "rejected" if refused is not None else (
                            "initial" if self.cache.issued == 0 else "expiring")
                        obtained: list[AccessToken] = []
                        request.extensions[TOKEN_REQUEST_PENDING] = self._no_answer
                        steps = self._refresh(reason, correlation_id, obtained)
                        try:
                            step = await steps.__anext__()
                            while True:
                                step = await steps.asend((yield step))
                        except StopAsyncIteration:
                            pass
                        finally:
                            await steps.aclose()
                        token = obtained[0]
                # Left in place when the token request got no answer: the boundary reads it (module docstring).
                request.extensions.pop(TOKEN_REQUEST_PENDING, None)
            response = yield self._send_with(request, token, correlation_id)
            if sent == 1 or not await self._token_refused(response):
                return
            refused = token  # refresh once and resend once; a second refusal is the caller's

    def _send_with(self, request: httpx.Request, token: AccessToken, correlation_id: str | None) -> httpx.Request:
        if self._clock.monotonic() >= token.expires_at:
            raise AuthError("access token expired before it could be sent", vendor=self.vendor,
                            correlation_id=correlation_id)
        return self._attach(request, token)

    async def _refresh(self, reason: str, correlation_id: str | None,
                       obtained: list[AccessToken]) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Token requests, newest credential first, until one is granted (appended to `obtained`)."""
        candidates = self._candidates(correlation_id)
        refusals: list[tuple[Candidate, AuthError]] = []
        for index, candidate in enumerate(candidates):
            request = self._build(candidate, correlation_id)
            requested_at = self._clock.monotonic()
            try:
                response = yield request
            except GeneratorExit:
                self._no_response()
                raise
            try:
                value, expires_in = await self._read_token(response, correlation_id)
                token = self.cache.store(value, expires_in, requested_at)
                if self._clock.monotonic() >= token.expires_at:
                    self.cache.invalidate(token)
                    raise RequestTimeout("token endpoint answered with a token that expired before it arrived",
                                         vendor=self.vendor, status=response.status_code,
                                         correlation_id=correlation_id, token_endpoint=True)
            except ConnectorError as exc:
                self._token_failed(exc)
                if not (isinstance(exc, AuthError) and self._is_rejection(exc)):
                    self._settle(exc)
                    raise
                self._rejected(candidate, exc, fallback=index + 1 < len(candidates))
                refusals.append((candidate, exc))
                continue
            except BaseException:
                # The answer broke off (transport error, cancelled): the boundary reports it (`_no_answer`).
                self._settle(None)
                raise
            self.credentials.accept(candidate)
            self._settle(None)
            logger.info("%s access token issued (%s, credential %s), expires in %.0f s", self.vendor, reason,
                        candidate.label, token.expires_in_s)
            self._listener(TokenIssued(vendor=self.vendor, expires_in_s=token.expires_in_s,
                                       refresh=reason != "initial", reason=reason))
            obtained.append(token)
            return
        last = refusals[-1][1]
        error = CredentialsRejected(
            f"the vendor refused every credential on offer ({', '.join(c.label for c, _ in refusals)}): "
            f"HTTP {last.status}" + (f" {last.oauth_error}" if last.oauth_error else ""),
            vendor=self.vendor, credentials=[c.label for c, _ in refusals], status=last.status,
            correlation_id=correlation_id, oauth_error=last.oauth_error)
        self._settle(error)
        raise error

    # -- internals -----------------------------------------------------------------------------------

    def _candidates(self, correlation_id: str | None) -> list[Candidate]:
        try:
            candidates = self.credentials.candidates()
        except ConfigurationError as exc:
            raise AuthError("credentials unavailable: " + "; ".join(exc.problems), vendor=self.vendor,
                            correlation_id=correlation_id) from None
        if not candidates:
            rejected = self.credentials.rejected_labels()
            logger.debug("%s: every credential on offer was refused; not asking again yet", self.vendor)
            wait = self.credentials.next_recheck() or 0.0
            raise CredentialsRejected(
                f"every credential on offer was refused by the vendor ({', '.join(rejected)}); not asking again "
                f"until a new credential is offered or for {wait:.0f} s",
                vendor=self.vendor, credentials=rejected, correlation_id=correlation_id, sent=False)
        return candidates

    def _build(self, candidate: Candidate, correlation_id: str | None) -> httpx.Request:
        try:
            return self._token_request(candidate.credential, correlation_id)
        except (TypeError, ValueError) as exc:
            # `from None`: nothing of the credential may leak through a chained exception.
            raise ConfigurationError(self.vendor, [f"credential {candidate.label}: {exc}"]) from None

    def _raise_shared_failure(self, seen: int, correlation_id: str | None) -> None:
        if self._refreshes != seen and self._last_failure is not None:
            raise self._last_failure.for_call(correlation_id)

    def _settle(self, failure: ConnectorError | None) -> None:
        self._refreshes += 1
        self._last_failure = failure

    def _no_response(self) -> None:
        """The token request got no response (transport error, timeout or cancellation)."""
        self._settle(None)  # a transport failure is not shared: waiters try for themselves
        logger.warning("%s token request got no response", self.vendor)

    def _no_answer(self, error: ConnectorError) -> None:
        """The boundary's report (`TOKEN_REQUEST_PENDING`): the token request got no answer, for `error`'s reason."""
        self._listener(TokenRequestFailed(vendor=self.vendor, status=None, error=type(error).__name__))

    def _token_failed(self, exc: ConnectorError) -> None:
        logger.warning("%s token request failed: status %s, error %s", self.vendor, exc.status, failure_name(exc))
        self._listener(TokenRequestFailed(vendor=self.vendor, status=exc.status, error=failure_name(exc)))

    def _rejected(self, candidate: Candidate, exc: AuthError, *, fallback: bool) -> None:
        self.credentials.reject(candidate)
        logger.error("%s refused credential %s (%s)%s", self.vendor, candidate.label,
                     exc.oauth_error or exc.status, "; trying the next one" if fallback else "")
        self._listener(CredentialRejected(vendor=self.vendor, credential=candidate.label, status=exc.status,
                                          error=failure_name(exc), fallback=fallback))
