"""Clocks: virtual (CI, replay) and real (game days), behind the `integrations.clock.Clock` protocol.

Virtual time comes from the asyncio event loop itself, via `looptime`: when every task is waiting,
the loop jumps straight to the next timer instead of sleeping. Anything that waits on the loop
(`asyncio.sleep`, `asyncio.timeout`, `call_later`) is compressed, so one time base drives the
components, the simulators and the runner. `noop_cycles=0` because all code in the lab is pure
asyncio (no executor threads in virtual mode); looptime's default of 42 idle cycles per time step
made a 10,000-step run 12x slower with the same virtual times.

`RealClock` may run faster than the wall (`scale`): a game-day rehearsal or a CI smoke test in real
mode can replay a 6-minute scenario in 20 seconds over real sockets. Every duration the lab and the
components measure or wait for is then in scenario seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import looptime

T = TypeVar("T")

#: Wall time at virtual time zero: fixed, so virtual runs are reproducible byte for byte.
VIRTUAL_EPOCH = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)


class VirtualClock:
    """Time is the running event loop's time, which looptime fast-forwards when the loop is idle."""

    def __init__(self, epoch: datetime = VIRTUAL_EPOCH) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self._epoch = epoch

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


class RealClock:
    """The system clock, optionally running `scale` times faster than the wall."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._mono0 = time.monotonic()  # real-time: the real clock's origin
        self._wall0 = datetime.now(UTC)  # real-time: the real clock's origin

    def now(self) -> datetime:
        if self.scale == 1.0:
            return datetime.now(UTC)  # real-time: this is the real clock
        return self._wall0 + timedelta(seconds=self.monotonic() - self._mono0)

    def monotonic(self) -> float:
        real = time.monotonic()  # real-time: this is the real clock
        return self._mono0 + (real - self._mono0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)  # real-time: this is the real clock

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds / self.scale)


def run_virtual(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main()` to completion on a fresh event loop whose time is virtual and starts at 0.

    A loop that is idle with no timer pending (a deadlock in virtual time) fails after one real
    second instead of hanging.
    """
    loop = looptime.new_event_loop(start=0.0, noop_cycles=0, idle_timeout=1.0)
    try:
        async def wrapper() -> T:
            return await main()

        return loop.run_until_complete(wrapper())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
