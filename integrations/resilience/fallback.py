"""Fallback to cached patient context (runbook `000_030ea53f0735abf7.txt §2` "Fallback mode activates
automatically ... Use cached patient context", `§8` "System automatically uses cached context").

`TtlCache` keeps what reads returned, for `ttl_s` seconds of the injected clock (default 300 s:
runbook `004_bc3882054056792c.txt` "Caching", `EHR_CACHE_TTL = 300  # 5 minutes`). An entry is
fresh while its age is below the TTL: at exactly 300 s it has expired. At most `max_entries` are
kept; the least recently stored goes first. The cache holds PHI in memory only: its repr and every
event it feeds carry counts, never keys or values.

`Degradation` is the fallback's on/off state for one provider: `update(reasons)` emits
`DegradationActivated` when the first reason appears and `DegradationCleared` (with the episode's
duration and how many reads were served from cache or found nothing) when the last one goes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from integrations.clock import Clock
from integrations.events import DegradationActivated, DegradationCleared, EventListener, ignore_event
from integrations.fhir.models import BundlePage, FhirResource, SearchResults

#: runbook 004_bc3882054056792c.txt "Caching": EHR_CACHE_TTL = 300 (5 minutes)
DEFAULT_TTL_S = 300.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Hit(Generic[V]):
    """A fresh cached value and its age in seconds."""

    value: V
    age_s: float

    def __repr__(self) -> str:
        return f"Hit(age_s={self.age_s:g})"


class TtlCache(Generic[K, V]):
    """Values for `ttl_s` seconds of the injected clock, at most `max_entries` of them."""

    def __init__(self, clock: Clock, ttl_s: float = DEFAULT_TTL_S, max_entries: int = 1000) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __repr__(self) -> str:
        return f"TtlCache(entries={len(self._entries)}, ttl_s={self.ttl_s:g})"

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock.monotonic(), value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: K) -> Hit[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = self._clock.monotonic() - entry[0]
        if age >= self.ttl_s:
            del self._entries[key]
            return None
        return Hit(entry[1], age)

    def fresh_count(self) -> int:
        """Entries younger than the TTL (expired ones are dropped)."""
        now = self._clock.monotonic()
        for key in [k for k, (stored, _) in self._entries.items() if now - stored >= self.ttl_s]:
            del self._entries[key]
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


ReadKey = tuple[str, str]  # (resource type, id)
SearchKey = tuple[str, tuple[tuple[str, tuple[str, ...]], ...], int]  # (type, sorted params, max pages)


class PatientContextCache:
    """The cached patient context: reads, first search pages and whole searches, one TTL."""

    def __init__(self, clock: Clock, ttl_s: float = DEFAULT_TTL_S, max_entries: int = 1000) -> None:
        self.reads: TtlCache[ReadKey, FhirResource] = TtlCache(clock, ttl_s, max_entries)
        self.pages: TtlCache[SearchKey, BundlePage] = TtlCache(clock, ttl_s, max_entries)
        self.searches: TtlCache[SearchKey, SearchResults] = TtlCache(clock, ttl_s, max_entries)

    def __repr__(self) -> str:
        return f"PatientContextCache(entries={self.fresh_count()}, ttl_s={self.reads.ttl_s:g})"

    def fresh_count(self) -> int:
        return self.reads.fresh_count() + self.pages.fresh_count() + self.searches.fresh_count()

    def clear(self) -> None:
        for cache in (self.reads, self.pages, self.searches):
            cache.clear()


class Degradation:
    """One provider's fallback state; see the module docstring."""

    def __init__(self, vendor: str, clock: Clock, listener: EventListener = ignore_event) -> None:
        self.vendor = vendor
        self._clock = clock
        self._listener = listener
        self._reasons: tuple[str, ...] = ()
        self._since = 0.0
        self.served_from_cache = 0  # in the current episode
        self.unavailable = 0

    def __repr__(self) -> str:
        return f"Degradation(vendor={self.vendor!r}, active={self.active}, reasons={self._reasons!r})"

    @property
    def active(self) -> bool:
        return bool(self._reasons)

    @property
    def reasons(self) -> tuple[str, ...]:
        return self._reasons

    def update(self, reasons: tuple[str, ...], cached_entries: int) -> None:
        """Set the current reasons; the edges between none and some are events."""
        was_active = self.active
        self._reasons = reasons
        if reasons and not was_active:
            self._since = self._clock.monotonic()
            self.served_from_cache = self.unavailable = 0
            self._listener(DegradationActivated(vendor=self.vendor, reasons=reasons, cached_entries=cached_entries))
        elif was_active and not reasons:
            self._listener(DegradationCleared(vendor=self.vendor, duration_s=self._clock.monotonic() - self._since,
                                              served_from_cache=self.served_from_cache, unavailable=self.unavailable))
