"""Client-side rate limiting: the integration throttles itself before the vendor does.

Runbook `004_bc3882054056792c.txt`, "Rate Limiting": "Built-in rate limiting prevents API quota
exhaustion ... Requests are throttled based on vendor limits. Epic: 600 requests/hour per client,
Cerner: 10,000 requests/hour per client, Allscripts: Varies by agreement" (`VENDOR_RATE_LIMITS`).

`RateLimiter` is a sliding-window log on the injected clock's monotonic time: it hands out *slots*
(instants at which one request may go) such that no window of `window_s` seconds holds more than
`requests` slots. A vendor that counts in fixed windows (Epic's simulator opens an hour at a client's
first request, `simulators/admin/ratelimit.py`), in sliding windows or with a token bucket of the
same size therefore never sees more than its limit from this client, whatever the window's phase. A
token bucket on the client side would not do: a full bucket of 600 plus an hour's refill lets 1,200
requests through in one hour.

Slots are handed out in call order (first come, first served) and reserved at once: the next slot
is `max(now, last slot, slot[-requests] + window_s)`. A caller whose slot is in the future waits for
it (`clock.sleep`), which is how a saturated limiter makes calls wait rather than fail. With
`max_wait_s`, a call whose slot is further away than that is refused instead (the connector raises
`ClientThrottled`) and reserves nothing. A slot given back with `release` (a cancelled wait) frees
its place for later callers. Slots older than one window are dropped, so memory is bounded by
`requests` plus the callers waiting.

What counts: one slot per attempt the connector sends (retries included), not token requests. A
resend after a 401 inside the auth flow takes no second slot: the first send was refused before the
vendor counted it (the simulators check the token before the rate limit, `simulators/epic/bearer.py`).
The slot is taken when the request leaves, so a vendor that counts arrivals sees them later by the
network latency; a lab that injects seconds of latency against a limit at 100 % use should give the
window a margin (`RateLimit(600, 3600 + margin)`).

Hand-written rather than `limits`, `pyrate-limiter` or `aiolimiter`: they read the system clock
(time.monotonic / time.time) or sleep with asyncio directly, which breaks the two-clock rule
(DESIGN.md, "Two clocks, one lab"); `aiolimiter` is also a leaky bucket, which admits a burst on top
of the hour's rate.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from integrations.clock import Clock


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` per `window_s` seconds; `max_wait_s` bounds a call's wait (None: no bound)."""

    requests: int
    window_s: float
    max_wait_s: float | None = None

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError("requests must be at least 1")
        if not self.window_s > 0:
            raise ValueError("window_s must be positive")
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")

    def __str__(self) -> str:
        return f"{self.requests}/{self.window_s:g}s"


#: Per-vendor defaults, runbook 004_bc3882054056792c.txt "Rate Limiting" (Allscripts "varies by
#: agreement": no default; Medplum's server limit, 60,000/min per IP, is far above any lab workload).
VENDOR_RATE_LIMITS: Mapping[str, RateLimit] = MappingProxyType({
    "epic": RateLimit(requests=600, window_s=3600.0),
    "cerner": RateLimit(requests=10_000, window_s=3600.0),
})


@dataclass(frozen=True, slots=True)
class Slot:
    """A reserved instant (`at`, on the clock's monotonic time) and how long the caller waits for it."""

    at: float
    wait_s: float


class RateLimiter:
    """A sliding-window log of slots; see the module docstring. One event loop owns it (not thread-safe)."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._slots: deque[float] = deque()  # sorted, none older than one window

    def __repr__(self) -> str:
        return f"RateLimiter(limit={self.limit}, max_wait_s={self.limit.max_wait_s!r}, slots={len(self._slots)})"

    def delay(self) -> float:
        """Seconds from now until a request reserved now could go; reserves nothing."""
        now = self._clock.monotonic()
        return self._next_at(now) - now

    def reserve(self) -> Slot:
        """Reserve the next slot (possibly in the future: wait `Slot.wait_s` before sending)."""
        now = self._clock.monotonic()
        at = self._next_at(now)
        self._slots.append(at)
        return Slot(at=at, wait_s=at - now)

    def release(self, slot: Slot) -> None:
        """Give back a slot whose request was never sent (a cancelled wait); unknown slots are ignored."""
        with contextlib.suppress(ValueError):
            self._slots.remove(slot.at)

    def in_window(self) -> int:
        """Slots in the current window, including reserved ones still in the future."""
        self._prune(self._clock.monotonic())
        return len(self._slots)

    def _next_at(self, now: float) -> float:
        self._prune(now)
        at = now
        if self._slots:
            at = max(at, self._slots[-1])
        if len(self._slots) >= self.limit.requests:
            at = max(at, self._slots[-self.limit.requests] + self.limit.window_s)
        return at

    def _prune(self, now: float) -> None:
        horizon = now - self.limit.window_s
        while self._slots and self._slots[0] <= horizon:
            self._slots.popleft()
