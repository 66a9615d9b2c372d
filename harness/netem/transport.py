"""Toxiproxy's toxics, emulated at the httpx transport on the injected clock (virtual mode).

`NetemTransport` wraps the in-process `VirtualTransport` of one simulator and plays the part of the
proxy in front of it: the connector's requests pass through it, and the fault driver adds and
removes toxics on it through the same `NetworkControl` calls that drive a real Toxiproxy in real
mode. Semantics follow `../shared/reference/toxiproxy.md §2` (source and probes of Toxiproxy
2.12.0); the errors are the ones httpx raises against a real proxy on loopback (measured with
httpx 0.28 / httpcore 1.0: an RST gives `ReadError('')`, a close before the response head
`RemoteProtocolError('Server disconnected without sending a response.')`, a refused connection
`ConnectError('All connection attempts failed')`).

Model: **each request is one connection** (in-process there is no socket to keep alive). A request
sends its bytes through the `upstream` chain, the simulator answers, the answer comes back through
the `downstream` chain. Each chain holds the toxics of its stream in the order they were added;
a toxic added while a request is in flight joins that request's chain (Toxiproxy applies toxics to
live connections), and one removed mid-delay releases the data at once ("on interrupt, the pending
chunk is sent at once"). Toxicity is rolled with the injected RNG once per toxic per connection,
when the toxic joins it, exactly where Toxiproxy rolls.

| toxic        | what a request sees here                                                              |
|--------------|---------------------------------------------------------------------------------------|
| latency      | the request (upstream) or the response (downstream) waits `latency ± jitter` ms       |
| bandwidth    | waits size / (`rate` x 1000 B/s), size being the request or response bytes on the wire|
| slicer       | waits `delay` µs per piece (pieces cut as Toxiproxy cuts them); the data is intact    |
| slow_close   | nothing: the delayed FIN is never observable within one HTTP exchange                 |
| timeout      | its stream's data is dropped; the connection closes `timeout` ms after the toxic      |
|              | started on it (`RemoteProtocolError`), or never with 0 (the connector's own timeout   |
|              | fires). Removing the toxic closes every live connection, as Toxiproxy's `Cleanup`     |
| reset_peer   | the first chunk on its stream is swallowed; `timeout` ms later the connection is      |
|              | reset (`ReadError`). Downstream, the simulator has already handled the request        |
| limit_data   | only `bytes` bytes pass, then the connection closes: a cut request gets no response,  |
|              | a cut response fails while its head or body is read (h11's own error)                 |
| proxy down   | new requests: `ConnectError`; requests in flight: closed (`RemoteProtocolError`)      |

A connection that had a `reset_peer` toxic on the proxy when it opened closes with an RST
(`ReadError`) whatever closes it, toxicity included (Toxiproxy sets `SO_LINGER 0` at accept).

Known gaps, by design of an in-process emulation:
- Keep-alive: a real client reuses pooled connections, so Toxiproxy rolls toxicity once per pooled
  connection, a toxic added to an idle pooled connection applies to its next request, and a
  `reset_peer` added to a live connection closes it with a FIN (`RemoteProtocolError`) instead of an
  RST. Here every request is a fresh connection. Both errors map to the connector's
  `ConnectionFailed`, so the integration's behaviour and the journal are the same.
- Chunking: a request and a response each travel as one chunk (their full wire size); Toxiproxy
  sees whatever each `read()` returned. Latency per chunk is the same either way; bandwidth and
  slicer timings are the same to within a chunk.
- TCP half-close and the handshake are not modelled (neither is observable through httpx here).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.netem.toxics import NetworkControlError, Stream, Toxic
from harness.netem.wire import read_cut_response, request_size, response_wire, slice_count
from integrations.clock import Clock
from simulators.transport import DISCONNECTED

#: httpx's message for a refused connection (anyio tries every address, then gives up).
REFUSED = "All connection attempts failed"


@dataclass(eq=False, slots=True)
class _Active:
    """A toxic on the proxy."""

    toxic: Toxic
    removed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False, slots=True)
class _Attached:
    """A toxic on one connection: whether its toxicity roll made it act, and whether it left."""

    active: _Active
    acts: bool
    detached: bool = False


class _Connection:
    """One request's connection through the emulated proxy."""

    def __init__(self, request: httpx.Request, *, reset_on_close: bool) -> None:
        self.request = request
        self.reset_on_close = reset_on_close  # SO_LINGER 0: any close is an RST
        self.chains: dict[Stream, list[_Attached]] = {"upstream": [], "downstream": []}
        self.closed: asyncio.Future[httpx.TransportError] = asyncio.get_running_loop().create_future()
        self.timers: list[asyncio.Task[None]] = []

    def close(self) -> None:
        """The proxy closes this connection: the client reads EOF, or ECONNRESET after an RST."""
        if self.closed.done():
            return
        if self.reset_on_close:
            self.closed.set_result(httpx.ReadError("", request=self.request))
        else:
            self.closed.set_result(httpx.RemoteProtocolError(DISCONNECTED, request=self.request))

    def end(self) -> None:
        for timer in self.timers:
            timer.cancel()


class _CutStream(httpx.AsyncByteStream):
    """A response body that stops short: what arrived, then the error httpx raises at the close."""

    def __init__(self, data: bytes, error: httpx.TransportError) -> None:
        self._data = data
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._data:
            yield self._data
        raise self._error


class NetemTransport(httpx.AsyncBaseTransport):
    """An emulated Toxiproxy proxy in front of `inner`; also the `NetworkControl` for it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, clock: Clock, rng: random.Random) -> None:
        self._inner = inner
        self._clock = clock
        self._rng = rng
        self._toxics: dict[str, _Active] = {}
        self._live: list[_Connection] = []
        self.enabled = True

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        """The toxics on the proxy, in the order they were added."""
        return tuple(active.toxic for active in self._toxics.values())

    # -- NetworkControl ----------------------------------------------------------------------------

    async def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self._toxics:
            raise NetworkControlError(f"toxic {toxic.name!r} already exists")
        active = _Active(toxic)
        self._toxics[toxic.name] = active
        for conn in self._live:
            self._attach(conn, active)

    async def remove_toxic(self, name: str) -> None:
        active = self._toxics.pop(name, None)
        if active is None:
            raise NetworkControlError(f"toxic {name!r} not found")
        active.removed.set()
        for conn in self._live:
            for attached in conn.chains[active.toxic.stream]:
                if attached.active is active:
                    attached.detached = True
            if active.toxic.type == "timeout":
                conn.close()  # Toxiproxy's TimeoutToxic.Cleanup closes the link, hence the connection

    async def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            for conn in self._live:
                conn.close()

    # -- the transport -----------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.enabled:
            raise httpx.ConnectError(REFUSED, request=request)
        conn = _Connection(request, reset_on_close=any(a.toxic.type == "reset_peer" for a in self._toxics.values()))
        self._live.append(conn)
        try:
            for active in self._toxics.values():
                self._attach(conn, active)
            return await self._until_closed(conn, self._exchange(request, conn))
        finally:
            self._live.remove(conn)
            conn.end()

    async def aclose(self) -> None:
        await self._inner.aclose()

    # -- internals ---------------------------------------------------------------------------------

    def _attach(self, conn: _Connection, active: _Active) -> None:
        toxicity = active.toxic.toxicity
        acts = toxicity >= 1.0 or (toxicity > 0.0 and self._rng.random() < toxicity)
        conn.chains[active.toxic.stream].append(_Attached(active, acts))
        if acts and active.toxic.type == "timeout" and active.toxic.attr("timeout") > 0:
            conn.timers.append(asyncio.create_task(self._close_later(conn, active.toxic.seconds("timeout"))))

    async def _close_later(self, conn: _Connection, seconds: float) -> None:
        await self._clock.sleep(seconds)
        conn.close()

    async def _until_closed(self, conn: _Connection,
                            exchange: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        """Run the exchange until it answers or the proxy closes the connection under it."""
        task = asyncio.create_task(exchange)
        either: set[asyncio.Future[Any]] = {task, conn.closed}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise conn.closed.result()

    async def _exchange(self, request: httpx.Request, conn: _Connection) -> httpx.Response:
        closes = False
        if conn.chains["upstream"]:  # the request's bytes matter only to a toxic on its way
            size = request_size(request, await request.aread())
            passed, closes = await self._carry(conn, "upstream", size)
            if passed < size:  # the request was cut: the simulator never sees all of it
                conn.close()
                return await self._closed(conn)
        response = await self._inner.handle_async_request(request)
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        if closes:  # the whole request got through, then the proxy closed the connection
            conn.close()
            return await self._closed(conn)
        if conn.chains["downstream"]:  # the response's bytes matter only to a toxic on its way
            wire = response_wire(response, content)
            passed, _ = await self._carry(conn, "downstream", len(wire))
            if passed < len(wire):
                return self._cut(request, conn, wire[:passed])
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(content),
                              extensions=response.extensions)

    async def _carry(self, conn: _Connection, stream: Stream, size: int) -> tuple[int, bool]:
        """Carry `size` bytes through one chain: how many got through, and whether the link then closes."""
        chain = conn.chains[stream]
        closes = False
        i = 0
        while i < len(chain):  # by index: a toxic added meanwhile joins the end of the chain
            attached = chain[i]
            i += 1
            if attached.detached or not attached.acts:
                continue
            toxic = attached.active.toxic
            if toxic.type == "latency":
                jitter = toxic.attr("jitter")
                delay_ms = toxic.attr("latency") + (self._rng.randrange(2 * jitter) - jitter if jitter > 0 else 0)
                await self._delay(attached.active, delay_ms / 1000)
            elif toxic.type == "bandwidth" and toxic.attr("rate") > 0:
                await self._delay(attached.active, size / (toxic.attr("rate") * 1000))
            elif toxic.type == "slicer":
                pieces = slice_count(size, toxic.attr("average_size"), toxic.attr("size_variation"), self._rng)
                await self._delay(attached.active, pieces * toxic.seconds("delay"))
            elif toxic.type == "timeout":
                await self._closed(conn)  # the data is dropped; only a close ends this
            elif toxic.type == "reset_peer":
                # Toxiproxy's ResetToxic swallows the chunk and sleeps uninterruptibly, then closes.
                await self._clock.sleep(toxic.seconds("timeout"))
                conn.close()
                await self._closed(conn)
            elif toxic.type == "limit_data" and size >= toxic.attr("bytes"):
                if size > toxic.attr("bytes"):
                    return toxic.attr("bytes"), True
                closes = True
        return size, closes

    async def _delay(self, active: _Active, seconds: float) -> None:
        """Hold data for `seconds`, or until the toxic holding it is removed."""
        if seconds <= 0 or active.removed.is_set():
            return
        try:
            async with self._clock.timeout(seconds):
                await active.removed.wait()
        except TimeoutError:
            pass

    async def _closed(self, conn: _Connection) -> httpx.Response:
        """Wait for the proxy to close the connection, then fail the way the client sees it."""
        raise await asyncio.shield(conn.closed)

    def _cut(self, request: httpx.Request, conn: _Connection, data: bytes) -> httpx.Response:
        """A response cut after `data`: the client reads what arrived, then the close."""
        if conn.reset_on_close:
            raise httpx.ReadError("", request=request)
        cut = read_cut_response(request.method, data)
        if cut.status is None:
            raise httpx.RemoteProtocolError(cut.error or DISCONNECTED, request=request)
        if cut.error is None:
            return httpx.Response(cut.status, headers=cut.headers, stream=httpx.ByteStream(cut.body))
        return httpx.Response(cut.status, headers=cut.headers,
                              stream=_CutStream(cut.body, httpx.RemoteProtocolError(cut.error, request=request)))
