"""Per-system connection-pool limits that hold on any transport: `PoolLimitedTransport`.

httpx applies `httpx.Limits` only inside its own connection pool (`AsyncHTTPTransport(limits=...)`),
so in real mode the registry builds the socket transport with the system's limits (`http_transport`).
An in-process transport (the lab's virtual mode: `httpx.ASGITransport` under the fault emulator) has
no pool and no limit at all. `PoolLimitedTransport` wraps whatever transport the system gets and lets
at most `max_connections` exchanges be in flight at once (an exchange is one request until its
response body is closed, the time httpx holds a pooled connection); the others wait, first come first
served, for a slot. Token requests go through the same transport and count too, as they would
on a real pool. Waiting has no deadline of its own: the connector's attempt timeout (on the injected
clock) covers the wait, as httpx's pool timeout would. Keep-alive settings only matter to a real
socket pool and are passed on there.

Hand-written rather than a library: an `asyncio.Semaphore` is the whole mechanism; it uses no time,
so it behaves the same on the virtual and the real clock. `stats()` reports what it saw
(in flight, peak, waits) for status pages and tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from integrations.systems.config import PoolLimits, SystemConfig


@dataclass(frozen=True, slots=True)
class PoolStats:
    max_connections: int
    in_flight: int
    peak_in_flight: int
    waited: int  # exchanges that had to wait for a slot
    exchanges: int  # exchanges started


class PoolLimitedTransport(httpx.AsyncBaseTransport):
    """At most `limits.max_connections` exchanges in flight through `inner`; see the module docstring."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limits: PoolLimits) -> None:
        self._inner = inner
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.max_connections)
        self._in_flight = 0
        self._peak = 0
        self._waited = 0
        self._exchanges = 0

    def __repr__(self) -> str:
        return f"PoolLimitedTransport(max_connections={self.limits.max_connections}, in_flight={self._in_flight})"

    def stats(self) -> PoolStats:
        return PoolStats(max_connections=self.limits.max_connections, in_flight=self._in_flight,
                         peak_in_flight=self._peak, waited=self._waited, exchanges=self._exchanges)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots.locked():
            self._waited += 1
        await self._slots.acquire()
        self._exchanges += 1
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        release = _Once(self._release)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            release()
            raise
        if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own contract
            release()
            raise TypeError("an async transport must return an AsyncByteStream")
        return httpx.Response(status_code=response.status_code, headers=response.headers,
                              stream=_ReleasingStream(response.stream, release), extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _release(self) -> None:
        self._in_flight -= 1
        self._slots.release()


class _Once:
    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it frees the slot (httpx closes it once the body is read or dropped)."""

    def __init__(self, inner: httpx.AsyncByteStream, release: _Once) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


def http_transport(system: SystemConfig) -> httpx.AsyncBaseTransport:
    """Real mode's default: httpx's socket pool, built with the system's limits (no transport retries:
    retrying is the connector's job, on the injected clock)."""
    return httpx.AsyncHTTPTransport(limits=system.limits.to_httpx(), retries=0)
