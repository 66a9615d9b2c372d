"""The event loop a test's lab lives on, driven from a synchronous test function.

- virtual: a looptime loop (as `harness.clock.run_virtual` builds it) owned by the test's thread. It runs
  only inside `run()`: between two calls no time passes, so what a test observes depends on the seed and
  on what it awaits, never on how long its own code took.
- real: a plain asyncio loop running forever in a daemon thread, on `RealClock` (optionally scaled).
  Servers on it (simulators on loopback, the integration service) keep answering between `run()` calls,
  so the test may also talk to them with a synchronous client or another process.

Hand-written rather than pytest-asyncio/anyio: those own the loop policy and know nothing of looptime's
virtual time, and the lab must not run on a loop whose clock it did not choose.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TypeVar

from harness.clock import RealClock, VirtualClock
from harness.lab import Mode
from harness.rng import RandomSource
from integrations.clock import Clock

T = TypeVar("T")


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class EhrlabLoop:
    """One test's event loop, clock, seeded random source and cleanup stack.

    `run(awaitable)` runs a coroutine (or any awaitable, or a function returning one) on the loop and returns
    its result; `enter(async_cm)` enters an async context manager on the loop and exits it at teardown.
    """

    def __init__(self, mode: Mode, seed: int, *, time_scale: float = 1.0) -> None:
        self.mode: Mode = mode
        self.seed = seed
        self.sources = RandomSource(seed)
        self._stack = AsyncExitStack()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.clock: Clock
        if mode == "virtual":
            import looptime

            self.clock = VirtualClock()
            self._loop: asyncio.AbstractEventLoop = looptime.new_event_loop(start=0.0, noop_cycles=0,
                                                                            idle_timeout=1.0)
        else:
            self.clock = RealClock(scale=time_scale)
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="ehrlab-loop", daemon=True)
            self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def stack(self) -> AsyncExitStack:
        """Closed when the loop closes, last in first out; enter contexts on it from code running on the loop."""
        return self._stack

    def run(self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run on the lab's loop and return the result (`timeout`: wall seconds, real mode only)."""
        if self._closed:
            raise RuntimeError("the ehrlab loop is closed (the fixture was torn down)")
        target = awaitable() if callable(awaitable) else awaitable
        if self._thread is None:
            return self._loop.run_until_complete(_await(target))
        future = asyncio.run_coroutine_threadsafe(_await(target), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        """Enter `context` on the loop; it is exited (in reverse order) when the loop closes."""
        return self.run(self._stack.enter_async_context(context))

    def close(self) -> None:
        """Exit every entered context, cancel what is left, stop and close the loop."""
        if self._closed:
            return
        try:
            self.run(self._stack.aclose())
        finally:
            try:
                self.run(self._cancel_rest())
            finally:
                self._closed = True
                if self._thread is not None:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    self._thread.join(timeout=10)
                self._loop.close()

    async def _cancel_rest(self) -> None:
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()
