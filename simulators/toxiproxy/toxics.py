"""The toxics: their attributes (as Toxiproxy's Go structs declare them) and what each does to a link.

Each `pipe` is a port of the toxic's Go `Pipe(stub)` (Toxiproxy 2.12, `toxics/*.go`); the exact
semantics are in `../shared/reference/toxiproxy.md` §2 "Toxics". Times in attributes are integer
milliseconds, except slicer's `delay` (microseconds); bandwidth's `rate` is KB/s with 1 KB = 1000 B.

Deliberate differences from the Go source, each a crash or hang there:
- bandwidth with `rate <= 0` passes data through (Go's splitting loop would spin on empty slices);
- slicer never cuts an empty piece and treats a `size_variation <= 0` as no variation (Go's
  `rand.Intn(0)` panics; its `slicer_termination_test.go` pins the fix);
- reset_peer, once it has its first chunk, is committed: removing it then does not wait for its
  timeout (Go blocks the API call until the reset); the reset happens either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.toxiproxy._gojson import INT, INT64, GoScalar, GoStruct
from simulators.toxiproxy._pipeline import INTERRUPTED, TIMED_OUT, Chunk, Pipe, Stub, noop_pipe

#: Chunks a latency toxic holds in flight: ../shared/reference/toxiproxy.md §2, latency ("Buffer size 1024").
LATENCY_BUFFER = 1024
#: Bandwidth: a chunk over rate*100 bytes goes out in pieces every 100 ms (reference §2, bandwidth).
BANDWIDTH_SLICE_S = 0.1


async def latency_pipe(stub: Stub, a: dict[str, int]) -> None:
    latency, jitter = a["latency"], a["jitter"]
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            stub.close()
            return
        delay_ms = latency + (stub.rng.randrange(2 * jitter) - jitter if jitter > 0 else 0)
        sleep = delay_ms / 1000 - (stub.clock.monotonic() - chunk.ts)  # delays do not accumulate
        if not await stub.sleep(sleep):
            await stub.send(chunk)  # interrupted: send it now, never drop it
            return
        chunk.ts += sleep  # a second latency toxic adds its delay on top
        if not await stub.send(chunk):
            return


async def bandwidth_pipe(stub: Stub, a: dict[str, int]) -> None:
    rate = a["rate"]
    debt = 0.0  # seconds of sleep owed; carries over between chunks (and may run ahead, negative)
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            stub.close()
            return
        if rate <= 0:
            if not await stub.send(chunk):
                return
            continue
        debt += len(chunk.data) / rate / 1000  # rate is KB/s with 1 KB = 1000 B (reference §2)
        data, piece = chunk.data, int(rate * BANDWIDTH_SLICE_S * 1000)
        while len(data) > piece:  # a slow rate: send rate*100 bytes every 100 ms
            if not await stub.sleep(BANDWIDTH_SLICE_S):
                await stub.send(Chunk(data, chunk.ts))
                return
            await stub.send(Chunk(data[:piece], chunk.ts))
            data = data[piece:]
            debt -= BANDWIDTH_SLICE_S
        started = stub.clock.monotonic()
        if not await stub.sleep(debt):
            await stub.send(Chunk(data, chunk.ts))
            return
        debt -= stub.clock.monotonic() - started  # timers overshoot: take the error off the next sleep
        if not await stub.send(Chunk(data, chunk.ts)):
            return


async def slow_close_pipe(stub: Stub, a: dict[str, int]) -> None:
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            if await stub.sleep(a["delay"] / 1000):
                stub.close()
            return
        if not await stub.send(chunk):
            return


async def timeout_pipe(stub: Stub, a: dict[str, int]) -> None:
    """Drops everything; closes the link `timeout` ms after the last thing it saw (0: never)."""
    within = a["timeout"] / 1000 if a["timeout"] > 0 else None
    while True:
        chunk = await stub.recv(within)
        if chunk is INTERRUPTED:
            return
        if chunk is TIMED_OUT or chunk is None:
            stub.close()
            return


async def reset_peer_pipe(stub: Stub, a: dict[str, int]) -> None:
    """On the first chunk (or EOF), wait `timeout` ms and close; with SO_LINGER 0 the close is an RST."""
    chunk = await stub.recv()
    if chunk is INTERRUPTED:
        return
    stub.committed = True
    await stub.clock.sleep(a["timeout"] / 1000)
    stub.close()


def slice_points(size: int, average: int, variation: int, rng: Any) -> list[tuple[int, int]]:
    """Go's `SlicerToxic.chunk`: halve around the middle ± variation until a piece is small enough."""
    pieces: list[tuple[int, int]] = []
    todo = [(0, size)]
    while todo:
        start, end = todo.pop()
        if (end - start) - average <= variation or end - start <= 1:
            pieces.append((start, end))
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(variation * 2) - variation
        mid = min(max(mid, start + 1), end - 1)
        todo.append((mid, end))
        todo.append((start, mid))
    return pieces


async def slicer_pipe(stub: Stub, a: dict[str, int]) -> None:
    delay = a["delay"] / 1_000_000
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            stub.close()
            return
        data = chunk.data
        for start, end in slice_points(len(data), a["average_size"], a["size_variation"], stub.rng):
            delivered = await stub.send(Chunk(data[start:end], chunk.ts))
            if not delivered or not await stub.sleep(delay):
                if end < len(data):
                    await stub.send(Chunk(data[end:], chunk.ts))
                return


async def limit_data_pipe(stub: Stub, a: dict[str, int]) -> None:
    state = stub.state
    while True:
        chunk = await stub.recv()
        if chunk is INTERRUPTED:
            return
        if not isinstance(chunk, Chunk):
            stub.close()
            return
        remaining = max(0, a["bytes"] - state["sent"])
        data = chunk.data[:remaining]
        delivered = True
        if data:
            delivered = await stub.send(Chunk(data, chunk.ts))
            state["sent"] += len(data)
        if a["bytes"] - state["sent"] <= 0:
            stub.close()
            return
        if not delivered:
            return


@dataclass(frozen=True)
class ToxicKind:
    """A registered toxic type: its Go struct (for decoding and error texts) and its behaviour."""

    name: str
    go_struct: GoStruct
    pipe: Pipe
    buffer_size: int = 0
    closes_on_removal: bool = False  # Go's `CleanupToxic` (timeout): removing it closes the link
    resets: bool = False  # present at link start: both sockets get SO_LINGER 0

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.go_struct.fields)


def _kind(name: str, struct: str, fields: tuple[str, ...], pipe: Pipe, go_int: GoScalar = INT64,
          **options: Any) -> ToxicKind:
    go_struct = GoStruct(f"toxics.{struct}", struct, tuple((f, go_int) for f in fields))
    return ToxicKind(name, go_struct, pipe, **options)


#: Toxiproxy's `ToxicRegistry`, in the order its attributes are echoed.
KINDS: dict[str, ToxicKind] = {kind.name: kind for kind in (
    _kind("latency", "LatencyToxic", ("latency", "jitter"), latency_pipe, buffer_size=LATENCY_BUFFER),
    _kind("bandwidth", "BandwidthToxic", ("rate",), bandwidth_pipe),
    _kind("slow_close", "SlowCloseToxic", ("delay",), slow_close_pipe),
    _kind("timeout", "TimeoutToxic", ("timeout",), timeout_pipe, closes_on_removal=True),
    _kind("reset_peer", "ResetToxic", ("timeout",), reset_peer_pipe, resets=True),
    _kind("slicer", "SlicerToxic", ("average_size", "size_variation", "delay"), slicer_pipe, go_int=INT),
    _kind("limit_data", "LimitDataToxic", ("bytes",), limit_data_pipe),
    _kind("noop", "NoopToxic", (), noop_pipe),
)}


@dataclass(eq=False)
class Toxic:
    """A toxic on a proxy: what the API shows, and what each link's stub runs."""

    name: str
    kind: ToxicKind
    stream: str  # as the client spelled it ("UPSTREAM" stays "UPSTREAM")
    toxicity: float
    attributes: dict[str, int] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def new_state(self) -> dict[str, Any]:
        return {"sent": 0}
