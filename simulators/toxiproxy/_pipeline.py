"""The pieces a link's toxic chain is made of: chunks, channels, the sink, and stubs that run toxics.

A port of Toxiproxy's `stream.StreamChunk`, Go channels and `toxics.ToxicStub` to one asyncio loop:

- `Chunk`: bytes as one socket read returned them, stamped with their receive time (`Clock.monotonic`).
- `Chan`: a bounded FIFO from one stage to the next (single producer, single consumer). Closing it is
  Go's `close(ch)`: once drained, every receive sees EOF (`None`), again and again.
- `Sink`: the end of a chain, writing to the destination transport. It is "full" while the transport
  asks us to pause writing (its buffer is above the high-water mark): backpressure reaches the source
  socket through the chain. Once its socket is gone it swallows data, so no stage ever blocks on it.
- `Stub`: runs one toxic's `pipe` on one link, as a task. `recv`, `send` and `sleep` are the only
  awaits a toxic makes; all three return early when the stub is *interrupted*, Toxiproxy's mechanism
  for changing a live chain (`InterruptToxic`). A toxic that is interrupted while holding data sends it
  on before returning ("don't drop any data on the floor"); a `send` that is interrupted while the next
  stage is full delivers anyway (past capacity) instead of blocking, so an API call that changes a
  chain never waits on a client that stopped reading (Toxiproxy's issues #88, #159, #254).

Toxicity is rolled each time a stub starts (`rng.random() < toxicity`, Go's `rand.Float32()`): at link
start, and when the toxic is added, updated, or its neighbour removed, as in `ToxicStub.Run`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from integrations.clock import Clock

if TYPE_CHECKING:
    from simulators.toxiproxy.toxics import Toxic

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Chunk:
    data: bytes
    ts: float  # receive time on the Clock's monotonic time base, advanced by latency toxics


class _Interrupted:
    def __repr__(self) -> str:
        return "INTERRUPTED"


INTERRUPTED: Final = _Interrupted()
TIMED_OUT: Final = object()


class Producer(Protocol):
    """Whoever feeds a channel: told when the channel has room again."""

    def wake(self) -> None: ...


class Chan:
    """A bounded channel between two stages of a chain."""

    __slots__ = ("capacity", "closed", "consumer", "items", "producer")

    def __init__(self, capacity: int) -> None:
        self.items: deque[Chunk] = deque()
        self.capacity = max(1, capacity)  # Go's unbuffered channel: one chunk in hand
        self.closed = False
        self.consumer: Stub | None = None
        self.producer: Producer | None = None

    def full(self) -> bool:
        return len(self.items) >= self.capacity

    def push(self, chunk: Chunk) -> None:
        self.items.append(chunk)
        if self.consumer is not None:
            self.consumer.wake()

    def pop(self) -> Chunk | None:
        if not self.items:
            return None
        chunk = self.items.popleft()
        if self.producer is not None and len(self.items) < self.capacity:
            self.producer.wake()
        return chunk

    def close(self) -> None:
        self.closed = True
        if self.consumer is not None:
            self.consumer.wake()


class Sink:
    """The end of a chain: writes each chunk to the destination transport."""

    __slots__ = ("closed", "dead", "on_close", "paused", "producer", "sent", "transport")

    def __init__(self, on_close: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.dead = False
        self.closed = False
        self.producer: Producer | None = None
        self.sent = 0
        self.on_close = on_close

    def full(self) -> bool:
        return self.paused and not self.dead

    def push(self, chunk: Chunk) -> None:
        self.write(chunk.data)

    def write(self, data: bytes) -> None:
        if self.dead or self.closed or self.transport is None:
            return
        self.sent += len(data)
        self.transport.write(data)

    def close(self) -> None:
        """The chain ended: close the destination fully (Go's `dest.Close()`), after what is buffered."""
        if not self.closed:
            self.closed = True
            self.on_close()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        if self.producer is not None:
            self.producer.wake()

    def lost(self) -> None:
        self.dead = True
        if self.producer is not None:
            self.producer.wake()


Output = Chan | Sink
Pipe = Callable[["Stub", dict[str, int]], Awaitable[None]]


class Stub:
    """One toxic running on one link (Toxiproxy's `ToxicStub`)."""

    def __init__(self, toxic: Toxic, input: Chan, output: Output, *, clock: Clock, rng: random.Random,
                 spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None] | None],
                 state: dict[str, Any]) -> None:
        self.toxic = toxic
        self.input = input
        self.output = output
        self.clock = clock
        self.rng = rng
        self.state = state  # per link, kept across restarts (limit_data's byte count)
        self._spawn = spawn
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.committed = False  # past the point of no return (reset_peer after its first chunk)
        self._interrupted = False
        self._waiter: asyncio.Future[None] | None = None
        input.consumer = self
        output.producer = self

    # lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """(Re)start the toxic: rolls toxicity and snapshots the attributes, like `ToxicStub.Run`."""
        self._interrupted = False
        attributes = dict(self.toxic.attributes)
        toxic_runs = self.rng.random() < self.toxic.toxicity
        pipe = self.toxic.kind.pipe if toxic_runs else noop_pipe
        self.task = self._spawn(self._run(pipe, attributes), f"toxic {self.toxic.name}")

    async def _run(self, pipe: Pipe, attributes: dict[str, int]) -> None:
        try:
            await pipe(self, attributes)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a toxic must not take the server down: end this link instead
            log.exception("toxic %s (%s) failed; closing its link", self.toxic.name, self.toxic.kind.name)
            self.close()

    async def interrupt(self) -> bool:
        """Stop the running toxic at a safe point; False if the stub is closed (the link is ending)."""
        if self.closed or self.committed:
            return False
        task = self.task
        if task is None or task.done():
            return not self.closed
        self._interrupted = True
        self.wake()
        await asyncio.wait({task})
        return not self.closed and not task.cancelled()  # cancelled: the connection was dropped

    def close(self) -> None:
        """Go's `stub.Close()`: no more output; the next stages see EOF and the link ends."""
        if not self.closed:
            self.closed = True
            self.output.close()

    # what toxics await -----------------------------------------------------------------------------

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def recv(self, within: float | None = None) -> Chunk | object | None:
        """The next chunk; None at EOF; INTERRUPTED; TIMED_OUT if `within` seconds pass first."""
        if within is None:
            return await self._recv()
        try:
            async with self.clock.timeout(within):
                return await self._recv()
        except TimeoutError:
            return TIMED_OUT

    async def _recv(self) -> Chunk | object | None:
        while True:
            if self._interrupted:
                return INTERRUPTED
            chunk = self.input.pop()
            if chunk is not None:
                return chunk
            if self.input.closed:
                return None
            await self._wait()

    async def send(self, chunk: Chunk) -> bool:
        """Pass `chunk` on; False if interrupted meanwhile (the chunk is delivered all the same)."""
        while self.output.full() and not self._interrupted:
            await self._wait()
        self.output.push(chunk)
        return not self._interrupted

    async def sleep(self, seconds: float) -> bool:
        """Sleep on the Clock; False if interrupted first."""
        if self._interrupted:
            return False
        if seconds <= 0:
            return True
        try:
            async with self.clock.timeout(seconds):
                while not self._interrupted:
                    await self._wait()
        except TimeoutError:
            return True
        return False


async def noop_pipe(stub: Stub, attributes: dict[str, int]) -> None:
    """Pass-through: the `noop` toxic, and any toxic whose toxicity roll failed."""
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            stub.close()
            return
        if not await stub.send(chunk):
            return
