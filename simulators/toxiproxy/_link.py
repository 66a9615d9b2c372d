"""One proxied TCP connection: two sockets, two one-way links, each a chain of toxic stubs.

Port of Toxiproxy's `proxy.go` accept path and `link.go` (`ToxicLink`), on asyncio protocols:

- On accept the client socket is paused and the upstream is dialled; if that fails the client is
  closed at once (it reads EOF). Then the `upstream` link (client → server) and the `downstream` link
  (server → client) start from the proxy's current toxics.
- A link with no toxics writes each read straight to the other socket (no task, no copy); backpressure
  is the usual proxy one (pause reading the source while the destination's buffer is high).
- With toxics, reads become timestamped chunks that flow through one `Stub` per toxic into the sink.
- When a link's source ends (EOF, error, or closed by the other link) its chain is closed; when the
  chain's end is reached the destination is closed *fully*. A client's half-close (SHUT_WR) therefore
  closes the whole connection, as in Toxiproxy. Closing a socket ends the other link in turn.
- A reset_peer toxic in either chain when the connection starts sets SO_LINGER 0 on both sockets, so
  their close is a TCP RST (whatever its toxicity: Toxiproxy issue #603).
- Toxics added, updated or removed later are spliced into live links without losing or reordering
  data (`add_toxic`, `update_toxic`, `remove_toxic`, the asyncio form of `ToxicLink.AddToxic` ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from integrations.clock import Clock
from simulators.toxiproxy._addr import AddressError, dial_targets
from simulators.toxiproxy._pipeline import Chan, Chunk, Output, Sink, Stub
from simulators.toxiproxy.toxics import Toxic

if TYPE_CHECKING:
    from simulators.toxiproxy.proxy import Proxy

_LINGER_ZERO = struct.pack("ii", 1, 0)


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the source of one link and the destination of the other."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.source_of: Link | None = None
        self.sink: Sink | None = None  # the sink of the link whose destination this is
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()  # until both links exist
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        if self.source_of is not None:
            self.source_of.feed(data)

    def eof_received(self) -> bool:
        if self.source_of is not None:
            self.source_of.source_ended()
        return True  # keep the socket open for the other direction; the link closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.source_of is not None:
            self.source_of.source_ended()
        if self.sink is not None:
            self.sink.lost()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.pause()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.resume()

    def set_linger_zero(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Link:
    """One direction of a connection (Toxiproxy's `ToxicLink`)."""

    def __init__(self, conn: Connection, direction: str, source: _Side, dest: _Side, chain: list[Toxic]) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.received = 0
        self.sink = Sink(on_close=dest.close)
        self.sink.transport = dest.transport
        source.source_of = self
        dest.sink = self.sink
        self.sink.producer = self
        self.stubs: list[Stub] = []
        self.head: Output = self.sink
        for toxic in chain:
            self._append(toxic)

    # the source socket ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        head = self.head
        if head is self.sink:
            self.sink.write(data)
        else:
            head.push(Chunk(data, self.conn.clock.monotonic()))
        if head.full() and self.source.transport is not None:
            self.source.transport.pause_reading()

    def wake(self) -> None:
        """The head has room again: read on."""
        transport = self.source.transport
        if transport is not None and not self.head.full() and not transport.is_reading():
            transport.resume_reading()

    def source_ended(self) -> None:
        self.head.close()

    # the chain ------------------------------------------------------------------------------------

    def _append(self, toxic: Toxic) -> Stub:
        """A stub for `toxic` at the end of the chain (not started)."""
        new_in = Chan(toxic.kind.buffer_size)
        if self.stubs:
            last = self.stubs[-1]
            output = last.output
            last.output = new_in
            new_in.producer = last
        else:
            output = self.sink
            self.head = new_in
            new_in.producer = self
        stub = Stub(toxic, new_in, output, clock=self.conn.clock, rng=self.conn.rng, spawn=self.conn.spawn,
                    state=toxic.new_state())
        self.stubs.append(stub)
        return stub

    def start(self) -> None:
        for stub in self.stubs:
            stub.start()

    def _stub_for(self, toxic: Toxic) -> Stub | None:
        return next((stub for stub in self.stubs if stub.toxic is toxic), None)

    async def add_toxic(self, toxic: Toxic) -> None:
        if not self.stubs:
            self._append(toxic).start()
            self.wake()  # reading may have been paused on the sink
            return
        last = self.stubs[-1]
        if await last.interrupt():
            stub = self._append(toxic)
            stub.start()
            last.start()

    async def update_toxic(self, toxic: Toxic) -> None:
        stub = self._stub_for(toxic)
        if stub is not None and await stub.interrupt():
            stub.start()

    async def remove_toxic(self, toxic: Toxic) -> None:
        removed = self._stub_for(toxic)
        if removed is None or not await removed.interrupt():
            return
        if toxic.kind.closes_on_removal:
            removed.close()  # Go's TimeoutToxic.Cleanup: the connection ends
            return
        index = self.stubs.index(removed)
        previous = self.stubs[index - 1] if index > 0 else None
        restart = previous is not None and await previous.interrupt()
        # Everything still queued for the removed toxic goes on, untouched, in order.
        while (chunk := removed.input.pop()) is not None:
            removed.output.push(chunk)
        self.stubs.remove(removed)
        if previous is None:
            self.head = removed.output
            removed.output.producer = self
        else:
            previous.output = removed.output
            removed.output.producer = previous
        if removed.input.closed:
            removed.output.close()
        if restart and previous is not None:
            previous.start()
        if previous is None:
            self.wake()


class Connection:
    """A client connection through a proxy, from accept until both sockets are closed."""

    def __init__(self, proxy: Proxy, clock: Clock, rng: random.Random) -> None:
        self.proxy = proxy
        self.clock = clock
        self.rng = rng
        self.client = _Side(self)
        self.upstream: _Side | None = None
        self.links: dict[str, Link] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished = False
        self._dialled = False
        self._aborted = False

    @property
    def closed(self) -> bool:
        return self.finished or self._aborted

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        """A task that ends with the connection; none once the connection is closed."""
        if self.closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.proxy.name}: {name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def side_made(self, side: _Side) -> None:
        if side is self.client:
            if not self.proxy.accepting(self):
                self._aborted = True
                self._dialled = True
                if side.transport is not None:
                    side.transport.abort()
                return
            self.spawn(self._dial(), "dial upstream")
            return
        self.upstream = side  # recorded at once: a cancelled dial must not leak the socket
        if self._aborted and side.transport is not None:
            side.transport.abort()

    async def _dial(self) -> None:
        try:
            targets = await dial_targets(self.proxy.upstream)
        except AddressError:
            targets = []
        for target in targets:
            if self.client.lost or self.upstream is not None:
                break
            with contextlib.suppress(OSError):
                await self._connect(target.host, target.port)
        self._dialled = True
        if self.upstream is None or self.client.lost:
            self.client.close()  # the client reads EOF at once (Toxiproxy closes it too)
            if self.upstream is not None:
                self.upstream.close()
            self._maybe_finish()
            return
        self._start_links(self.upstream)

    async def _connect(self, host: str, port: int) -> None:
        side = _Side(self)
        await asyncio.get_running_loop().create_connection(lambda: side, host, port)

    def _start_links(self, upstream: _Side) -> None:
        chains = self.proxy.toxics_snapshot()
        if any(toxic.kind.resets for chain in chains.values() for toxic in chain):
            self.client.set_linger_zero()
            upstream.set_linger_zero()
        self.links["upstream"] = Link(self, "upstream", self.client, upstream, chains["upstream"])
        self.links["downstream"] = Link(self, "downstream", upstream, self.client, chains["downstream"])
        for link in self.links.values():
            link.start()
        for side in (self.client, upstream):
            if side.transport is not None and not side.lost:
                side.transport.resume_reading()

    def side_lost(self, side: _Side) -> None:
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or not self.client.lost or not self._dialled:
            return
        if self.upstream is not None and not self.upstream.lost:
            return
        self.finished = True
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self.proxy.connection_finished(self)

    def abort(self) -> None:
        """Drop the connection now (proxy disabled, moved or deleted): both peers see the socket close."""
        self._aborted = True
        self._dialled = True
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.abort()
        for task in list(self.tasks):
            task.cancel()


def protocol_factory(proxy: Proxy, clock: Clock, rng: random.Random) -> Callable[[], asyncio.Protocol]:
    return lambda: Connection(proxy, clock, rng).client
