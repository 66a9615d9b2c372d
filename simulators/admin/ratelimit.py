"""Fixed-window rate limits per key (client, IP, project), on the injected clock, tunable at run time.

`WindowRateLimiter(clock, limit, window_s)` counts points per key in a window that opens at the key's
first hit and lasts `window_s` seconds of the clock's monotonic time; `hit(key, cost)` answers with
a `RateDecision` a vendor turns into its own headers and 429 shape (Medplum's `RateLimit` header,
Epic's OperationOutcome codes, ...). It reproduces the semantics of `rate-limiter-flexible`'s memory
limiter, which Medplum's `ratelimit.ts` and `fhirquota.ts` use (reference/vendors.md §3,
"Rate limits"): every hit consumes its points even when refused, a hit is allowed while the points
consumed in the window stay within `limit`, and `remaining` is `limit - consumed`, floored at 0.
So with a limit of 20, one search of cost 20 leaves `remaining == 0` and the next request is refused
(Medplum's own test of its FHIR quota).

Defaults a vendor passes (cite them where they are set): Epic 600 requests per hour per client and
Cerner 10,000 per hour per client (runbooks/004_bc3882054056792c.txt, "Rate Limiting"), Medplum
60,000 per minute per IP and a FHIR-interaction quota in points per minute (reference/vendors.md §3).

Hand-written rather than `limits` or `pyrate-limiter`: both read the system clock (time.time /
time.monotonic) inside, which breaks the two-clock rule (DESIGN.md, "Two clocks, one lab").
`configure` changes the limit, the window length or `enabled` at once, for windows already open too
(shrinking an hour's window to a minute ends the current window early); `reset` forgets every
window. Keys whose window has closed are dropped as the table grows, so memory stays bounded by
the keys active in one window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from integrations.clock import Clock

#: Above this many keys, `hit` drops the keys whose window has closed.
PRUNE_ABOVE = 1024


class RateDecision(NamedTuple):
    """The answer to one hit: allowed or not, points left in the window, seconds until it resets.

    A named tuple rather than a frozen dataclass: one is made per hit, and a request hits up to three."""

    allowed: bool
    remaining: int
    reset_s: float
    limit: int
    consumed: int = 0


@dataclass(slots=True)
class _Window:
    opened_at: float
    consumed: int = 0


class WindowRateLimiter:
    """Fixed windows of `window_s` seconds allowing `limit` points per key."""

    def __init__(self, clock: Clock, limit: int, window_s: float, *, enabled: bool = True) -> None:
        _check(limit, window_s)
        self._clock = clock
        self.limit = limit
        self.window_s = window_s
        self.enabled = enabled
        self._windows: dict[str, _Window] = {}

    def __repr__(self) -> str:
        return (f"WindowRateLimiter(limit={self.limit}, window_s={self.window_s:g}, enabled={self.enabled}, "
                f"keys={len(self._windows)})")

    def hit(self, key: str, cost: int = 1) -> RateDecision:
        """Consume `cost` points for `key`; refused once the window's points would exceed the limit."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        now = self._clock.monotonic()
        window = self._windows.get(key)
        if window is None or now >= window.opened_at + self.window_s:
            window = self._window(key, now)
        limit = self.limit
        reset_s = max(0.0, window.opened_at + self.window_s - now)
        if not self.enabled:
            return RateDecision(True, limit, reset_s, limit)
        consumed = window.consumed = window.consumed + cost
        return RateDecision(consumed <= limit, max(0, limit - consumed), reset_s, limit, consumed)

    def peek(self, key: str) -> RateDecision:
        """The state of `key`'s window without consuming anything."""
        now = self._clock.monotonic()
        window = self._windows.get(key)
        if window is None or now >= window.opened_at + self.window_s:
            return RateDecision(allowed=True, remaining=self.limit, reset_s=self.window_s, limit=self.limit)
        return RateDecision(allowed=window.consumed < self.limit or not self.enabled,
                            remaining=max(0, self.limit - window.consumed),
                            reset_s=max(0.0, window.opened_at + self.window_s - now), limit=self.limit,
                            consumed=window.consumed)

    def configure(self, limit: int | None = None, window_s: float | None = None, *,
                  enabled: bool | None = None) -> None:
        """Change the settings at run time; they apply at once, to windows already open too."""
        new_limit = self.limit if limit is None else limit
        new_window = self.window_s if window_s is None else window_s
        _check(new_limit, new_window)
        self.limit, self.window_s = new_limit, new_window
        if enabled is not None:
            self.enabled = enabled

    def reset(self, key: str | None = None) -> None:
        """Forget every window (or `key`'s): the next hit opens a fresh one."""
        if key is None:
            self._windows.clear()
        else:
            self._windows.pop(key, None)

    def settings(self) -> dict[str, object]:
        return {"limit": self.limit, "window_s": self.window_s, "enabled": self.enabled}

    def _window(self, key: str, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.opened_at + self.window_s:
            if window is None and len(self._windows) >= PRUNE_ABOVE:
                self._windows = {k: w for k, w in self._windows.items() if now < w.opened_at + self.window_s}
            window = self._windows[key] = _Window(opened_at=now)
        return window


def _check(limit: int, window_s: float) -> None:
    if limit < 0:
        raise ValueError("limit must not be negative")
    if not window_s > 0:
        raise ValueError("window_s must be positive")
