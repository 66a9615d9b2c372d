"""`SeriesData`: the catalogue's series computed over one journal (see `harness.sla.series`)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from harness.journal import (
    AuditMirrorEvent,
    BreakerEvent,
    ConsentCheckedEvent,
    Event,
    FhirSyncEvent,
    FlagChangedEvent,
    JobEvent,
    OperationEvent,
    QueueEvent,
    ReconciliationEvent,
    RequestEvent,
)
from harness.sla.queue_state import QueueReplay
from harness.sla.series import SERIES, is_write

Keep = Callable[[Event], bool]
#: The events a series over failures is drawn from (its zero means "all well", not "nothing seen").
_POPULATION: dict[str, type[Event] | tuple[type[Event], ...]] = {
    "consent_denied_per_min": ConsentCheckedEvent,
    "fhir_sync_errors_per_min": FhirSyncEvent,
    "queue_job_errors_per_min": JobEvent,
    "queue_store_unavailable": (JobEvent, QueueEvent),
    "reconciliation_failures": ReconciliationEvent,
    "queue_failed_jobs": (JobEvent, QueueEvent),
    "queue_waiting_jobs": (JobEvent, QueueEvent),
    "queue_active_jobs": (JobEvent, QueueEvent),
}


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n))."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100.0 * len(ordered))) - 1]


def _ratio(hits: int, total: int) -> float | None:
    return None if total == 0 else hits / total


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _p95(values: list[float]) -> float | None:
    return percentile(values, 95.0) if values else None


class SeriesData:
    """Every series over `events`, restricted to `vendor` where the series is per vendor."""

    def __init__(self, events: Sequence[Event], vendor: str | None = None) -> None:
        self.vendor = vendor
        self.events = sorted(events, key=lambda e: e.t)
        self.queue = QueueReplay.of(self.events)
        self._by_series: dict[str, list[Event]] = {}
        self._times: dict[str, list[float]] = {}
        self._gauges: dict[str, tuple[list[tuple[float, float]], list[float]]] = {}

    # -- window series -----------------------------------------------------------------------------------

    def _select(self, name: str) -> list[Event]:
        if name in self._by_series:
            return self._by_series[name]
        v = self.vendor
        if name.startswith(("operation_", "write_")):
            picked: list[Event] = [e for e in self.events if isinstance(e, OperationEvent)
                                   and (v is None or e.vendor == v)
                                   and (name != "write_success_ratio" or is_write(e.operation))]
        elif name.startswith("request_"):
            picked = [e for e in self.events if isinstance(e, RequestEvent) and (v is None or e.vendor == v)]
        elif name == "consent_denied_per_min":
            picked = [e for e in self.events if isinstance(e, ConsentCheckedEvent) and e.status == "denied"]
        elif name == "fhir_sync_errors_per_min":
            picked = [e for e in self.events if isinstance(e, FhirSyncEvent) and e.kind == "fhir_sync.failed"]
        elif name == "queue_job_errors_per_min":
            picked = [e for e in self.events if isinstance(e, JobEvent) and e.kind in ("job.retry", "job.failed")]
        elif name in ("queue_job_duration_p95_s", "fhir_sync_duration_p95_s"):
            picked = [e for e in self.events if isinstance(e, JobEvent) and e.kind == "job.completed"
                      and (name == "queue_job_duration_p95_s" or e.name.endswith("-sync"))]
        elif name == "queue_store_unavailable":
            picked = [e for e in self.events if isinstance(e, QueueEvent) and e.kind == "queue.store_unavailable"]
        elif name == "reconciliation_failures":
            picked = [e for e in self.events if isinstance(e, ReconciliationEvent) and e.errors > 0]
        elif name == "audit_mirror_errors":
            picked = [e for e in self.events if isinstance(e, AuditMirrorEvent)]
        else:
            raise KeyError(f"{name!r} is not a window series")
        self._by_series[name] = picked
        self._times[name] = [e.t for e in picked]
        return picked

    def reduce(self, name: str, events: Sequence[Event], span_s: float) -> float | None:
        """The value of window series `name` over `events` (already selected) spanning `span_s` seconds."""
        ops = [e for e in events if isinstance(e, OperationEvent)]
        if name in ("operation_success_ratio", "write_success_ratio"):
            return _ratio(sum(1 for e in ops if e.ok), len(ops))
        if name == "operation_error_ratio":
            return _ratio(sum(1 for e in ops if not e.ok), len(ops))
        if name == "operation_latency_avg_ms":
            return _mean([e.duration_ms for e in ops if e.ok])
        if name == "operation_latency_p95_ms":
            return _p95([e.duration_ms for e in ops if e.ok])
        requests = [e for e in events if isinstance(e, RequestEvent)]
        if name == "request_5xx_ratio":
            return _ratio(sum(1 for e in requests if e.status is not None and 500 <= e.status < 600), len(requests))
        if name == "request_latency_p95_ms":
            return _p95([e.duration_ms for e in requests])
        if name.endswith("_per_min"):
            return len(events) / (span_s / 60.0) if span_s > 0 else None
        if name.endswith("_duration_p95_s"):
            return _p95([(e.duration_ms or 0.0) / 1000.0 for e in events if isinstance(e, JobEvent)])
        if name == "audit_mirror_errors":
            return float(sum(e.errors for e in events if isinstance(e, AuditMirrorEvent)))
        return float(len(events))  # counts

    def window(self, name: str, end: float, range_s: float) -> float | None:
        """Window series `name` over the events in `(end - range_s, end]`."""
        picked = self._select(name)
        times = self._times[name]
        lo, hi = bisect.bisect_right(times, end - range_s), bisect.bisect_right(times, end)
        return self.reduce(name, picked[lo:hi], range_s)

    def over(self, name: str, keep: Keep, span_s: float) -> float | None:
        """Window series `name` over every selected event `keep` accepts (a band's scope)."""
        return self.reduce(name, [e for e in self._select(name) if keep(e)], span_s)

    def count(self, name: str, keep: Keep) -> int:
        """How many of the events window series `name` is drawn from `keep` accepts (what a band over a scope
        judged): its population for a series of failures (see `support`), else its own events."""
        population = _POPULATION.get(name)
        if population is not None:
            return sum(1 for e in self.events if isinstance(e, population) and keep(e))
        return sum(1 for e in self._select(name) if keep(e))

    def support(self, name: str) -> int:
        """How many journal events feed series `name` at all: the population a failure series counts in
        (every consent check for the denials, every reconciliation run for the failed ones, every job event
        for the queue's gauges ...). 0: a check over the series has nothing to judge."""
        shape = SERIES[name].shape
        population = _POPULATION.get(name)
        if population is not None:
            return sum(1 for e in self.events if isinstance(e, population))
        if shape == "window":
            return len(self._select(name))
        if shape == "measure":
            return len(self.measures(name))
        if shape == "state":
            return len(self.breakers())
        return len(self.gauge_points(name))

    # -- gauges ------------------------------------------------------------------------------------------

    def gauge_points(self, name: str) -> list[tuple[float, float]]:
        """(t, value) where gauge `name` changes; the value holds until the next point."""
        if name not in self._gauges:
            points = self._gauge_points(name)
            self._gauges[name] = (points, [p[0] for p in points])
        return self._gauges[name][0]

    def _gauge_points(self, name: str) -> list[tuple[float, float]]:
        if name == "queue_failed_jobs":
            return self.queue.gauge("failed")
        if name == "queue_waiting_jobs":
            return self.queue.gauge("waiting")
        if name == "queue_active_jobs":
            return self.queue.gauge("active")
        recs = [e for e in self.events if isinstance(e, ReconciliationEvent)]
        if name == "fhir_sync_not_synced":
            return [(e.t, float(e.encounters_not_synced + e.observations_not_synced)) for e in recs]
        if name == "fhir_sync_stale":
            return [(e.t, float(e.encounters_stale + e.observations_stale)) for e in recs]
        if name == "audit_mirror_age_s":
            return [(e.t, 0.0) for e in self.events if isinstance(e, AuditMirrorEvent)]
        raise KeyError(f"{name!r} is not a gauge")

    def gauge(self, name: str, t: float) -> float | None:
        points = self.gauge_points(name)
        times = self._gauges[name][1]
        i = bisect.bisect_right(times, t)
        if i == 0:
            return 0.0 if name.startswith("queue_") else None  # an empty queue; no run yet
        at, value = points[i - 1]
        return t - at if name == "audit_mirror_age_s" else value

    # -- measures ----------------------------------------------------------------------------------------

    def measures(self, name: str) -> list[tuple[float, float]]:
        """(t, value) per occurrence of measure `name`."""
        if name == "queue_drain_s":
            return [(t, seconds) for t, seconds, _ in self.queue.drains()]
        if name == "staged_recovery_read_soak_s":
            return self._read_soaks()
        raise KeyError(f"{name!r} is not a measure")

    def _read_soaks(self) -> list[tuple[float, float]]:
        """Runbook 000 §8: re-enable reads, monitor 15 min, then re-enable writes."""
        flags = [e for e in self.events if isinstance(e, FlagChangedEvent) and e.scope == "global"]
        read_on: dict[str, float | None] = {}
        out = []
        for e in flags:
            vendor, _, flag = e.flag.partition("_fhir_")
            if self.vendor is not None and vendor != self.vendor:
                continue
            if flag == "read_only":
                read_on[vendor] = e.t if e.enabled else None
            elif flag == "write" and e.enabled and e.previous is False:
                since = read_on.get(vendor)
                out.append((e.t, 0.0 if since is None else e.t - since))
        return out

    # -- states ------------------------------------------------------------------------------------------

    def breakers(self) -> list[BreakerEvent]:
        return [e for e in self.events if isinstance(e, BreakerEvent)
                and (self.vendor is None or e.breaker == self.vendor)]

    def states_at(self, t: float) -> list[str]:
        """Each breaker's state at `t` (CLOSED before its first transition)."""
        state: dict[str, str] = {}
        for e in self.breakers():
            state.setdefault(e.breaker, e.from_state)
            if e.t <= t:
                state[e.breaker] = e.to_state
        return list(state.values()) or ["CLOSED"]
