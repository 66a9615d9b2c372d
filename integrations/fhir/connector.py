"""The FHIR connector: reads, searches (with safe paging), creates and conditional updates against one
vendor's FHIR base, through one injected transport, auth flow, retry policy and circuit breaker.

Per logical call (one `read`, one `search` page, one `create` ...): one correlation id, drawn from
the injected RNG and sent as `X-Correlation-Id` with every attempt (and with the token request the
attempt may trigger). Per attempt:

1. `breaker.acquire()`: an OPEN breaker raises `CircuitOpen` at once; nothing is sent, no retry.
   The breaker comes first so that calls refused by an open breaker take no rate-limit slot.
2. With a client-side `RateLimiter` (`integrations.fhir.ratelimit`): take the next slot and wait for
   it on the clock (a `RequestThrottled` event when there is a wait), or, when the wait would exceed
   the limit's `max_wait_s`, raise `ClientThrottled` (the breaker permit is handed back: the vendor
   was not asked). The wait is not part of the attempt timeout.
3. Send inside `clock.timeout(attempt_timeout_s)` (the timeout covers a token refresh and the
   one resend after a 401, so it is the whole attempt's budget) and translate the outcome at one
   boundary (`_boundary.exchange`), then read the body as the FHIR type asked for.
4. Record the outcome on the breaker (`CircuitBreaker.record`; a cancelled attempt is released).
5. Emit `RequestCompleted`: URL path only (a query string can carry patient identifiers), status,
   duration on `clock.monotonic()`, attempt number, error class name.

The retry loop sits outside the breaker: failed attempts that `RetryPolicy.should_retry` allows are
retried after `RetryPolicy.delay` (a `RetryScheduled` event, then `clock.sleep`). Plain POSTs are
never retried; conditional creates (If-None-Exist) and PUTs are.

Version conflicts (runbook `000_030ea53f0735abf7.txt §4`: "412 | Precondition failed | ETag mismatch,
retry"): an `update` whose If-Match is stale gets 412 (Cerner: 409). Resending the same If-Match cannot
succeed, so the retry loop never does; with an `on_conflict` merge callback, `update` re-reads the
resource, asks the callback for the change re-applied to the fresh version, and writes that with the
fresh version's If-Match (at most `max_conflicts` times, a `VersionConflict` event each time). Without
a callback, or when it returns None, the 412 surfaces as `PreconditionFailed` (409: `Conflict`).

Paging (`search_all`, `integrations.fhir.paging`) follows a Bundle's `next` link only if it has the
base URL's scheme, host and port: a link to another origin raises `MalformedResponse` before any
request, because the auth flow would attach the bearer token to it. Redirects are never followed, for
the same reason. A token that expires between pages is the auth flow's business (one refresh and one
resend on a 401), so the next page still arrives and no 401 reaches the caller; each page is its own
logical call, so a failed page is retried alone, never the search from the start.

The connector owns its `httpx.AsyncClient` (close it with `aclose()` or `async with`), not the
breaker, the auth or the transport, which the caller may share. It holds no global state.
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

import httpx

from integrations.clock import Clock
from integrations.events import (
    EventListener,
    RequestCompleted,
    RequestThrottled,
    RetryScheduled,
    VersionConflict,
    ignore_event,
)
from integrations.fhir import _parsing
from integrations.fhir._boundary import Reply, exchange
from integrations.fhir.breaker import CircuitBreaker, Permit
from integrations.fhir.errors import (
    ClientThrottled,
    Conflict,
    ConnectorError,
    MalformedResponse,
    PreconditionFailed,
)
from integrations.fhir.models import (
    CORRELATION_HEADER,
    BundlePage,
    FhirResource,
    JsonObject,
    JsonValue,
    SearchResults,
    if_match_value,
    version_from_etag,
)
from integrations.fhir.paging import Pages
from integrations.fhir.ratelimit import RateLimiter, Slot
from integrations.fhir.retry import RetryPolicy, retry_safe

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Search parameters: a value, or several values for a repeated parameter (`date=ge..&date=le..`).
SearchParams = Mapping[str, str | Sequence[str]]

#: `update`'s `on_conflict`: given the resource as the server has it now, the change re-applied to it
#: (same type and id), or None to give up. May be a coroutine function.
ConflictMerge = Callable[
    [FhirResource], Mapping[str, JsonValue] | Awaitable[Mapping[str, JsonValue] | None] | None]

_FHIR_JSON = "application/fhir+json"


class FhirConnector:
    """One vendor's FHIR R4 API; see the module docstring."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        auth: httpx.Auth,
        clock: Clock,
        rng: random.Random,
        retry: RetryPolicy,
        breaker: CircuitBreaker,
        listener: EventListener = ignore_event,
        attempt_timeout_s: float = 10.0,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if attempt_timeout_s <= 0:
            raise ValueError("attempt_timeout_s must be positive")
        self.vendor = vendor
        self.retry = retry
        self.breaker = breaker
        self.rate_limiter = rate_limiter
        self._clock = clock
        self._rng = rng
        self._listener = listener
        self._attempt_timeout_s = attempt_timeout_s
        # timeout=None: timeouts come from the injected clock, so they also work in virtual time.
        # trust_env=False: no proxy or .netrc from the environment; the transport is the only seam.
        self._client = httpx.AsyncClient(transport=transport, base_url=base_url, auth=auth, timeout=None,
                                         follow_redirects=False, trust_env=False, headers={"Accept": _FHIR_JSON})

    def __repr__(self) -> str:
        base = self._client.base_url
        return f"FhirConnector(vendor={self.vendor!r}, base_url='{base.scheme}://{base.netloc.decode()}{base.path}')"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the FHIR interactions ---------------------------------------------------------------------

    async def read(self, resource_type: str, id: str) -> FhirResource:
        """`GET [base]/[type]/[id]`; `NotFound` for 404 and 410."""
        path = f"{_parsing.check_resource_type(resource_type)}/{_parsing.check_id(id)}"
        return await self._call(
            "GET", path, retry_safe=True,
            parse=lambda r: _parsing.resource(r.body, etag=r.etag, resource_type=resource_type, resource_id=id))

    async def search(self, resource_type: str, params: SearchParams | None = None) -> BundlePage:
        """`GET [base]/[type]?params`: the first page of the searchset."""
        query = _query(params or {})
        return await self._call("GET", _parsing.check_resource_type(resource_type), params=query, retry_safe=True,
                                parse=lambda r: _parsing.bundle_page(r.body))

    async def search_all(self, resource_type: str, params: SearchParams | None = None, *,
                         max_pages: int = 100) -> SearchResults:
        """Every page of a search, following same-origin `next` links, at most `max_pages` pages."""
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        page = await self.search(resource_type, params)
        pages = Pages(self._client.base_url, vendor=self.vendor)
        pages.add(page.resources)
        while page.next_url is not None and pages.pages < max_pages:
            url = pages.next_url(page.next_url)
            page = await self._call("GET", url, retry_safe=True, parse=lambda r: _parsing.bundle_page(r.body))
            pages.add(page.resources)
        return pages.results(complete=page.next_url is None)

    async def create(self, resource: Mapping[str, JsonValue], if_none_exist: str | None = None) -> FhirResource:
        """`POST [base]/[type]`. With `if_none_exist` (a search query such as `identifier=x|1`) it is a
        conditional create: retried on transient failures, since a resend cannot make a duplicate."""
        resource_type = _type_of(resource)
        headers = {"Content-Type": _FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist is not None:
            headers["If-None-Exist"] = if_none_exist
        return await self._call(
            "POST", resource_type, content=_encode(resource), headers=headers,
            retry_safe=retry_safe("POST", conditional_create=if_none_exist is not None),
            parse=lambda r: _written(r, resource, resource_type))

    async def update(self, resource: Mapping[str, JsonValue], if_match: str | None = None, *,
                     on_conflict: ConflictMerge | None = None, max_conflicts: int = 3) -> FhirResource:
        """`PUT [base]/[type]/[id]`, with `If-Match: W/"<if_match>"` when a version is given.

        A stale version is answered 412 (`PreconditionFailed`; Cerner: 409, `Conflict`). With
        `on_conflict`, the resource is re-read, `on_conflict(current)` re-applies the change to it and
        the result is written with the current version, up to `max_conflicts` times (see the module
        docstring); without it, or when it returns None, the error surfaces.
        """
        if max_conflicts < 0:
            raise ValueError("max_conflicts must not be negative")
        resource_type = _type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs the resource's id")
        _parsing.check_id(resource_id)
        conflicts = 0
        while True:
            try:
                return await self._put(resource, resource_type, resource_id, if_match)
            except (PreconditionFailed, Conflict) as error:
                stale_version = isinstance(error, PreconditionFailed) or if_match is not None
                if on_conflict is None or not stale_version or conflicts >= max_conflicts:
                    raise
                conflicts += 1
                current = await self.read(resource_type, resource_id)
                merged = on_conflict(current)
                if inspect.isawaitable(merged):
                    merged = await merged
                fresh_version = current.version_id or current.etag
                usable = merged is not None and fresh_version is not None
                self._listener(VersionConflict(vendor=self.vendor, resource_type=resource_type,
                                               status=error.status or 0, attempt=conflicts, merged=usable,
                                               correlation_id=error.correlation_id))
                if merged is None or fresh_version is None:
                    raise
                if _type_of(merged) != resource_type or merged.get("id") != resource_id:
                    raise ValueError("on_conflict must return the same resource (type and id)") from None
                logger.info("%s %s update conflicted (HTTP %s); re-applied to version %s [correlation id %s]",
                            self.vendor, resource_type, error.status, fresh_version, error.correlation_id)
                resource, if_match = merged, fresh_version

    async def _put(self, resource: Mapping[str, JsonValue], resource_type: str, resource_id: str,
                   if_match: str | None) -> FhirResource:
        headers = {"Content-Type": _FHIR_JSON, "Prefer": "return=representation"}
        if if_match is not None:
            headers["If-Match"] = if_match_value(if_match)
        return await self._call(
            "PUT", f"{resource_type}/{_parsing.check_id(resource_id)}", content=_encode(resource), headers=headers,
            retry_safe=True, parse=lambda r: _written(r, resource, resource_type))

    # -- attempts and retries ----------------------------------------------------------------------

    async def _call(self, method: str, url: str | httpx.URL, *, parse: Callable[[Reply], T], retry_safe: bool,
                    params: tuple[tuple[str, str], ...] | None = None, content: bytes | None = None,
                    headers: dict[str, str] | None = None) -> T:
        correlation_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        attempt = 1
        while True:
            try:
                return await self._attempt(method, url, params, content, headers or {}, correlation_id, attempt, parse)
            except ConnectorError as error:
                if not self.retry.should_retry(error, attempt, retry_safe=retry_safe):
                    raise
                delay = self.retry.delay(attempt, self._rng, error.retry_after_s)
                logger.info("%s %s attempt %d failed (%s); retrying in %.3f s [correlation id %s]", self.vendor,
                            method, attempt, type(error).__name__, delay, correlation_id)
                self._listener(RetryScheduled(vendor=self.vendor, attempt=attempt, delay_s=delay,
                                              reason=type(error).__name__, retry_after_s=error.retry_after_s))
                await self._clock.sleep(delay)
                attempt += 1

    async def _attempt(self, method: str, url: str | httpx.URL, params: tuple[tuple[str, str], ...] | None,
                       content: bytes | None, headers: dict[str, str], correlation_id: str, attempt: int,
                       parse: Callable[[Reply], T]) -> T:
        permit = self.breaker.acquire(correlation_id)
        await self._throttle(permit, correlation_id)
        request = self._client.build_request(method, url, params=params, content=content,
                                             headers={**headers, CORRELATION_HEADER: correlation_id})
        started = self._clock.monotonic()
        status: int | None = None
        try:
            reply = await exchange(self._client, request, clock=self._clock, timeout_s=self._attempt_timeout_s,
                                   vendor=self.vendor, correlation_id=correlation_id)
            status = reply.status
            try:
                result = parse(reply)
            except _parsing.BadBody as exc:
                raise MalformedResponse(str(exc), vendor=self.vendor, status=status, correlation_id=correlation_id,
                                        issues=exc.issues) from None
        except ConnectorError as error:
            self.breaker.record(permit, error)
            # A token endpoint failure happened before this request was sent: its status is not this path's.
            sent_status = None if error.token_endpoint else error.status
            self._completed(request, sent_status, started, attempt, type(error).__name__, correlation_id)
            raise
        except BaseException:
            self.breaker.release(permit)  # cancelled: no outcome to record
            raise
        self.breaker.record(permit, None)
        self._completed(request, status, started, attempt, None, correlation_id)
        return result

    async def _throttle(self, permit: Permit, correlation_id: str) -> None:
        """Wait for a slot of the client-side rate limiter, or raise `ClientThrottled` (module docstring)."""
        limiter = self.rate_limiter
        if limiter is None:
            return
        limit = limiter.limit
        wait = limiter.delay()
        if limit.max_wait_s is not None and wait > limit.max_wait_s:
            self.breaker.release(permit)  # the vendor was not asked: no outcome
            self._listener(RequestThrottled(vendor=self.vendor, wait_s=wait, limit=limit.requests,
                                            window_s=limit.window_s, refused=True, correlation_id=correlation_id))
            raise ClientThrottled(f"client rate limit {limit} reached; the next slot is {wait:.3f} s away, beyond "
                                  f"the {limit.max_wait_s:g} s the call may wait", vendor=self.vendor,
                                  correlation_id=correlation_id, retry_after_s=wait)
        slot: Slot = limiter.reserve()
        if slot.wait_s <= 0:
            return
        logger.info("%s client rate limit %s reached; waiting %.3f s [correlation id %s]", self.vendor, limit,
                    slot.wait_s, correlation_id)
        self._listener(RequestThrottled(vendor=self.vendor, wait_s=slot.wait_s, limit=limit.requests,
                                        window_s=limit.window_s, refused=False, correlation_id=correlation_id))
        try:
            await self._clock.sleep(slot.wait_s)
        except BaseException:  # cancelled while waiting: nothing was sent
            limiter.release(slot)
            self.breaker.release(permit)
            raise

    def _completed(self, request: httpx.Request, status: int | None, started: float, attempt: int,
                   error: str | None, correlation_id: str) -> None:
        self._listener(RequestCompleted(vendor=self.vendor, method=request.method, path=request.url.path,
                                        status=status, duration_s=self._clock.monotonic() - started, attempt=attempt,
                                        error=error, correlation_id=correlation_id))


def _query(params: SearchParams) -> tuple[tuple[str, str], ...]:
    query: list[tuple[str, str]] = []
    for name, value in params.items():
        if isinstance(value, str):
            query.append((name, value))
        else:
            query.extend((name, item) for item in value)
    return tuple(query)


def _type_of(resource: Mapping[str, JsonValue]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("the resource has no resourceType")
    return _parsing.check_resource_type(resource_type)


def _encode(resource: Mapping[str, JsonValue]) -> bytes:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _written(reply: Reply, sent: Mapping[str, JsonValue], resource_type: str) -> FhirResource:
    """The resource a create/update returned; with `return=minimal` servers, what Location/ETag tell."""
    if reply.body is not None:
        return _parsing.resource(reply.body, etag=reply.etag, resource_type=resource_type)
    located = _parsing.location_parts(reply.location)
    resource_id = located[0] if located else sent.get("id")
    if not isinstance(resource_id, str):
        raise _parsing.BadBody("empty body and no Location to identify the written resource")
    body: JsonObject = {**sent, "id": resource_id}
    version = (located[1] if located else None) or version_from_etag(reply.etag)
    return FhirResource(resource_type=resource_type, id=resource_id, version_id=version, etag=reply.etag, body=body)
