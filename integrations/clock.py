"""The clock every component takes by injection.

Nothing in `integrations/`, `simulators/` or `harness/` reads the system clock or sleeps directly:
time comes from a `Clock`, so the same code runs on the lab's virtual clock (an hour of outage in
seconds, deterministic) and on the real one (game days, production). Implementations live in
`harness.clock`; a production deployment uses `harness.clock.RealClock()`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time, monotonic time, sleeping and timeouts, all on one time base."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic time base; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds` of this clock's time."""
        ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Raise `TimeoutError` in the block if it runs longer than `seconds` of this clock's time."""
        ...
