"""Journal events of the resilience components (`integrations.resilience`): provider monitor, fallback,
feature flags. Statuses, reasons, flag names and counts, never an identifier."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event
from integrations.events import (
    DegradationActivated,
    DegradationCleared,
    FeatureFlagChanged,
    IntegrationEvent,
    ProviderHealthChanged,
)


class ProviderHealthEvent(Event):
    """A provider monitor's status changed (runbook 000 §7 bands; integrations.resilience.monitor)."""

    kind: Literal["provider.health"] = "provider.health"
    vendor: str
    from_status: str
    to_status: str
    success_rate: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    samples: int
    breaker_state: str | None


class DegradationActivatedEvent(Event):
    """Reads fall back to the cached patient context (runbook 000 §2). Reasons and a count, never ids."""

    kind: Literal["degradation.activated"] = "degradation.activated"
    vendor: str
    reasons: tuple[str, ...]
    cached_entries: int


class DegradationClearedEvent(Event):
    kind: Literal["degradation.cleared"] = "degradation.cleared"
    vendor: str
    duration_s: float
    served_from_cache: int
    unavailable: int


class FlagChangedEvent(Event):
    """A feature flag or a user's override changed (runbook 000 §3, §8); users by pseudonym only."""

    kind: Literal["flag.changed"] = "flag.changed"
    flag: str
    enabled: bool | None
    previous: bool | None
    scope: str
    user_ref: str | None
    batch_size: int


def resilience_entry(event: IntegrationEvent, t: float) -> Event | None:
    """The journal event for a resilience event (`integrations.resilience`: monitor, fallback, flags) at
    scenario time `t`, else None. Statuses, reasons, flag names and counts, never an identifier."""
    if isinstance(event, ProviderHealthChanged):
        return ProviderHealthEvent(
            t=t, vendor=event.vendor, from_status=event.from_status.value, to_status=event.to_status.value,
            success_rate=None if event.success_rate is None else round(event.success_rate, 6),
            avg_latency_ms=None if event.avg_latency_s is None else round(event.avg_latency_s * 1000, 3),
            p95_latency_ms=None if event.p95_latency_s is None else round(event.p95_latency_s * 1000, 3),
            samples=event.samples, breaker_state=None if event.breaker_state is None else event.breaker_state.value)
    if isinstance(event, DegradationActivated):
        return DegradationActivatedEvent(t=t, vendor=event.vendor, reasons=event.reasons,
                                         cached_entries=event.cached_entries)
    if isinstance(event, DegradationCleared):
        return DegradationClearedEvent(t=t, vendor=event.vendor, duration_s=round(event.duration_s, 6),
                                       served_from_cache=event.served_from_cache, unavailable=event.unavailable)
    if isinstance(event, FeatureFlagChanged):
        return FlagChangedEvent(t=t, flag=event.flag, enabled=event.enabled, previous=event.previous,
                                scope=event.scope, user_ref=event.user_ref, batch_size=event.batch_size)
    return None
