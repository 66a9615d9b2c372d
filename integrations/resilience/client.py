"""`ResilientFhirClient`: one provider's connector behind its breaker, monitor, fallback and flags.

Reads (`read`, `search`, `search_all`) return `Served[...]`: the value and whether it is degraded
(served from the cached patient context rather than by the provider). Per read:

1. The read flag (`<vendor>_fhir_read_only`, runbook 000_030ea53f0735abf7.txt §8) off for this
   caller: the cache answers, or `EhrUnavailable`; the provider is not called.
2. Cache first while the breaker is OPEN / FORCED_OPEN or the monitor says UNHEALTHY (000 §2
   "Fallback mode activates automatically"): a fresh cached copy answers, degraded. On a miss the
   provider is tried (an open breaker refuses at once).
3. Otherwise the provider answers, and what it returns is cached (TTL 300 s). If the call fails
   because the provider is down (breaker refusal, 5xx, timeout, dropped connection, malformed body:
   the breaker's `is_failure`) or throttling (429, client-side throttle), the cache answers,
   degraded, or `EhrUnavailable` ("EHR temporarily unavailable", 000 §8) says nothing was cached.
   Any other error (404, 403, 400, 409 ...) is the provider's answer and is raised as it is.

HALF_OPEN is not cache-first: the breaker's trial calls have to reach the provider to close it.

Writes (`create`, `update`) are refused with `WritesDisabled` while the write flag
(`<vendor>_fhir_write`, 000 §3) is off for the caller; nothing is sent. Otherwise they go to the
provider (never to the cache) and what they return is cached for reads.

The fallback (`degradation`) is active while the breaker is not CLOSED/DISABLED, the monitor says
UNHEALTHY or the global read flag is off; it is re-evaluated on every breaker transition, monitor
status change, flag change and call, and its edges are `degradation.activated` /
`degradation.cleared` events (reasons and counts, never identifiers). Every provider call's outcome
and latency is recorded on the monitor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

from integrations.clock import Clock
from integrations.events import BreakerState, EventListener, HealthStatus, ignore_event
from integrations.fhir.breaker import REFUSING
from integrations.fhir.connector import FhirConnector, SearchParams
from integrations.fhir.errors import CircuitOpen, ConnectorError
from integrations.fhir.models import BundlePage, FhirResource, JsonValue, SearchResults
from integrations.resilience.errors import EhrUnavailable, WritesDisabled
from integrations.resilience.fallback import Degradation, Hit, PatientContextCache, SearchKey, TtlCache
from integrations.resilience.flags import FeatureFlags, read_flag, write_flag
from integrations.resilience.monitor import ProviderMonitor, ProviderStatus

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """A read's result. `degraded`: it came from the cached patient context, `age_s` old."""

    value: T
    degraded: bool
    age_s: float | None = None

    @property
    def source(self) -> Literal["provider", "cache"]:
        return "cache" if self.degraded else "provider"


class ResilientFhirClient:
    """See the module docstring. Build it inside the running event loop."""

    def __init__(self, connector: FhirConnector, *, clock: Clock, flags: FeatureFlags,
                 monitor: ProviderMonitor | None = None, cache: PatientContextCache | None = None,
                 listener: EventListener = ignore_event) -> None:
        self.connector = connector
        self.vendor = connector.vendor
        self.breaker = connector.breaker
        self.flags = flags
        self.monitor = monitor if monitor is not None else ProviderMonitor(
            self.vendor, clock, breaker=self.breaker, listener=listener)
        self.cache = cache if cache is not None else PatientContextCache(clock)
        self.degradation = Degradation(self.vendor, clock, listener)
        self._clock = clock
        self.read_flag = read_flag(self.vendor)
        self.write_flag = write_flag(self.vendor)
        flags.is_enabled(self.read_flag)  # both must be registered: UnknownFeatureFlag now, not mid-outage
        flags.is_enabled(self.write_flag)
        self.breaker.subscribe(lambda _event: self.refresh())
        self.monitor.subscribe(lambda _event: self.refresh())
        flags.subscribe(lambda _event: self.refresh())
        self.refresh()

    def __repr__(self) -> str:
        return f"ResilientFhirClient(vendor={self.vendor!r}, fallback_active={self.fallback_active})"

    @property
    def fallback_active(self) -> bool:
        return self.degradation.active

    def status(self) -> ProviderStatus:
        """The monitor's status with `fallback_active` (runbook 000 §8 "Verify Fallback Active")."""
        status = self.monitor.status()
        self.refresh()
        return replace(status, fallback_active=self.degradation.active)

    def refresh(self) -> None:
        """Re-evaluate the fallback's reasons now (done on every event that can change them)."""
        reasons: list[str] = []
        state = self.breaker.state
        if state in REFUSING:
            reasons.append("breaker_open")
        elif state is BreakerState.HALF_OPEN:
            reasons.append("breaker_half_open")
        if self.monitor.health is HealthStatus.UNHEALTHY:
            reasons.append("provider_unhealthy")
        if not self.flags.is_enabled(self.read_flag):
            reasons.append("reads_disabled")
        if tuple(reasons) != self.degradation.reasons:
            self.degradation.update(tuple(reasons), self.cache.fresh_count())

    # -- reads -------------------------------------------------------------------------------------

    async def read(self, resource_type: str, id: str, *, user: str | None = None) -> Served[FhirResource]:
        return await self._serve(self.cache.reads, (resource_type, id),
                                 lambda: self.connector.read(resource_type, id), user)

    async def search(self, resource_type: str, params: SearchParams | None = None, *,
                     user: str | None = None) -> Served[BundlePage]:
        return await self._serve(self.cache.pages, _search_key(resource_type, params, 1),
                                 lambda: self.connector.search(resource_type, params), user)

    async def search_all(self, resource_type: str, params: SearchParams | None = None, *, max_pages: int = 100,
                         user: str | None = None) -> Served[SearchResults]:
        return await self._serve(self.cache.searches, _search_key(resource_type, params, max_pages),
                                 lambda: self.connector.search_all(resource_type, params, max_pages=max_pages), user)

    # -- writes ------------------------------------------------------------------------------------

    async def create(self, resource: Mapping[str, JsonValue], if_none_exist: str | None = None, *,
                     user: str | None = None) -> FhirResource:
        self._require_writes(user)
        created = await self._measured(lambda: self.connector.create(resource, if_none_exist))
        self.cache.reads.put((created.resource_type, created.id), created)
        return created

    async def update(self, resource: Mapping[str, JsonValue], if_match: str | None = None, *,
                     user: str | None = None) -> FhirResource:
        self._require_writes(user)
        updated = await self._measured(lambda: self.connector.update(resource, if_match))
        self.cache.reads.put((updated.resource_type, updated.id), updated)
        return updated

    # -- internals ---------------------------------------------------------------------------------

    def _require_writes(self, user: str | None) -> None:
        if not self.flags.is_enabled(self.write_flag, user):
            raise WritesDisabled(f"writes are disabled ({self.write_flag} is off); nothing was sent",
                                 vendor=self.vendor, flag=self.write_flag)

    def _cache_first(self) -> bool:
        return self.breaker.state in REFUSING or self.monitor.health is HealthStatus.UNHEALTHY

    def _falls_back(self, error: ConnectorError) -> bool:
        return isinstance(error, CircuitOpen) or self.breaker.config.is_failure(error) or error.is_rate_limit

    async def _serve(self, cache: TtlCache[K, T], key: K, fetch: Callable[[], Awaitable[T]],
                     user: str | None) -> Served[T]:
        self.refresh()
        if not self.flags.is_enabled(self.read_flag, user):
            return self._from_cache(cache, key, None)
        if self._cache_first():
            hit = cache.get(key)
            if hit is not None:
                return self._degraded(hit)
        try:
            value = await self._measured(fetch)
        except ConnectorError as error:
            if not self._falls_back(error):
                raise
            return self._from_cache(cache, key, error)
        cache.put(key, value)
        return Served(value=value, degraded=False)

    def _from_cache(self, cache: TtlCache[K, T], key: K, cause: ConnectorError | None) -> Served[T]:
        hit = cache.get(key)
        if hit is not None:
            return self._degraded(hit)
        self.degradation.unavailable += 1
        why = "reads are disabled" if cause is None else f"the provider failed ({type(cause).__name__})"
        raise EhrUnavailable(f"EHR temporarily unavailable: {why} and no cached copy is fresh", vendor=self.vendor,
                             correlation_id=None if cause is None else cause.correlation_id,
                             retry_after_s=cause.retry_after_s if isinstance(cause, CircuitOpen) else None) from cause

    def _degraded(self, hit: Hit[T]) -> Served[T]:
        self.degradation.served_from_cache += 1
        return Served(value=hit.value, degraded=True, age_s=hit.age_s)

    async def _measured(self, call: Callable[[], Awaitable[T]]) -> T:
        started = self._clock.monotonic()
        try:
            result = await call()
        except ConnectorError as error:
            self.monitor.record(self._clock.monotonic() - started, error)
            self.refresh()
            raise
        self.monitor.record(self._clock.monotonic() - started, None)
        self.refresh()
        return result


def _search_key(resource_type: str, params: SearchParams | None, max_pages: int) -> SearchKey:
    normalized = sorted((name, (value,) if isinstance(value, str) else tuple(value))
                        for name, value in (params or {}).items())
    return (resource_type, tuple(normalized), max_pages)
