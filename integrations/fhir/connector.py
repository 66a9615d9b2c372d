"""The FHIR connector: reads, searches (with safe paging), creates and conditional updates against one
vendor's FHIR base, through one injected transport, auth flow, retry policy and circuit breaker.

Per logical call (one `read`, one `search` page, one `create` ...): one correlation id, drawn from
the injected RNG and sent as `X-Correlation-Id` with every attempt (and with the token request the
attempt may trigger). Per attempt:

1. `breaker.acquire()`: an OPEN breaker raises `CircuitOpen` at once; nothing is sent, no retry.
2. Send inside `clock.timeout(attempt_timeout_s)` (the timeout covers a token refresh and the
   one resend after a 401, so it is the whole attempt's budget) and translate the outcome at one
   boundary (`_boundary.exchange`), then read the body as the FHIR type asked for.
3. Record the outcome on the breaker (`CircuitBreaker.record`; a cancelled attempt is released).
4. Emit `RequestCompleted`: URL path only (a query string can carry patient identifiers), status,
   duration on `clock.monotonic()`, attempt number, error class name.

The retry loop sits outside the breaker: failed attempts that `RetryPolicy.should_retry` allows are
retried after `RetryPolicy.delay` (a `RetryScheduled` event, then `clock.sleep`). Plain POSTs are
never retried; conditional creates (If-None-Exist) and PUTs are.

Paging (`search_all`) follows a Bundle's `next` link only if it has the base URL's scheme, host and
port: a link to another origin raises `MalformedResponse` before any request, because the auth flow
would attach the bearer token to it. Redirects are never followed, for the same reason.

The connector owns its `httpx.AsyncClient` (close it with `aclose()` or `async with`), not the
breaker, the auth or the transport, which the caller may share. It holds no global state.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

import httpx

from integrations.clock import Clock
from integrations.events import EventListener, RequestCompleted, RetryScheduled, ignore_event
from integrations.fhir import _parsing
from integrations.fhir._boundary import Reply, exchange
from integrations.fhir.breaker import CircuitBreaker
from integrations.fhir.errors import AuthError, ConnectorError, MalformedResponse
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
from integrations.fhir.retry import RetryPolicy, retry_safe

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Search parameters: a value, or several values for a repeated parameter (`date=ge..&date=le..`).
SearchParams = Mapping[str, str | Sequence[str]]

_FHIR_JSON = "application/fhir+json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    ) -> None:
        if attempt_timeout_s <= 0:
            raise ValueError("attempt_timeout_s must be positive")
        self.vendor = vendor
        self.retry = retry
        self.breaker = breaker
        self._clock = clock
        self._rng = rng
        self._listener = listener
        self._attempt_timeout_s = attempt_timeout_s
        # timeout=None: timeouts come from the injected clock, so they also work in virtual time.
        # trust_env=False: no proxy or .netrc from the environment; the transport is the only seam.
        self._client = httpx.AsyncClient(transport=transport, base_url=base_url, auth=auth, timeout=None,
                                         follow_redirects=False, trust_env=False, headers={"Accept": _FHIR_JSON})
        self._origin = _origin(self._client.base_url)

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
        resources = list(page.resources)
        pages = 1
        followed: set[str] = set()
        while page.next_url is not None and pages < max_pages:
            url = self._next_url(page.next_url)
            if str(url) in followed:
                raise MalformedResponse("the searchset's next link repeats a page already read", vendor=self.vendor)
            followed.add(str(url))
            page = await self._call("GET", url, retry_safe=True, parse=lambda r: _parsing.bundle_page(r.body))
            resources.extend(page.resources)
            pages += 1
        return SearchResults(resources=tuple(resources), pages=pages, complete=page.next_url is None)

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

    async def update(self, resource: Mapping[str, JsonValue], if_match: str | None = None) -> FhirResource:
        """`PUT [base]/[type]/[id]`, with `If-Match: W/"<if_match>"` when a version is given
        (`PreconditionFailed` on 412, `Conflict` on 409: re-read, re-apply, try again)."""
        resource_type = _type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs the resource's id")
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
                raise MalformedResponse(str(exc), vendor=self.vendor, status=status,
                                        correlation_id=correlation_id) from None
        except ConnectorError as error:
            self.breaker.record(permit, error)
            # A token endpoint failure happened before this request was sent: its status is not this path's.
            sent_status = None if isinstance(error, AuthError) and error.token_endpoint else error.status
            self._completed(request, sent_status, started, attempt, type(error).__name__, correlation_id)
            raise
        except BaseException:
            self.breaker.release(permit)  # cancelled: no outcome to record
            raise
        self.breaker.record(permit, None)
        self._completed(request, status, started, attempt, None, correlation_id)
        return result

    def _completed(self, request: httpx.Request, status: int | None, started: float, attempt: int,
                   error: str | None, correlation_id: str) -> None:
        self._listener(RequestCompleted(vendor=self.vendor, method=request.method, path=request.url.path,
                                        status=status, duration_s=self._clock.monotonic() - started, attempt=attempt,
                                        error=error, correlation_id=correlation_id))

    def _next_url(self, link: str) -> httpx.URL:
        """The absolute URL of a `next` link, if it is safe to send the bearer token there."""
        try:
            url = self._client.base_url.join(link)
        except httpx.InvalidURL:
            raise MalformedResponse("the searchset's next link is not a valid URL", vendor=self.vendor) from None
        if _origin(url) != self._origin or url.userinfo:
            raise MalformedResponse(
                f"refusing to follow a next link to another origin ({url.scheme}://{url.host}:{_port(url)}); "
                f"it would carry the access token", vendor=self.vendor)
        return url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, _port(url)


def _port(url: httpx.URL) -> int | None:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)


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
