"""Bands and alert rules evaluated over a journal's series.

A band is judged over a scope of the run (all of it, the steady state outside fault windows, or only
the fault windows): a window series over every event in scope at once, a gauge, measure or state at
its worst moment in scope. The verdict is the band: healthy, warning or critical.

A rule is evaluated as Prometheus evaluates an alerting rule: at every `interval` (the catalogue's
evaluation interval, runbook 002 §8.1's 15 s scrape) the series is computed (a window series over
`(t - window, t]`), the condition tested; it is pending from the first evaluation where it holds and
fires once it has held at every evaluation for `for` (at once when `for` is 0); it resolves at the
first evaluation where it does not hold. No data (no event in the range) does not hold, as an absent
series does not in PromQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from harness.journal import Event, OperationEvent
from harness.sla.catalogue import BAND_ORDER, Band, NumericBand, Rule, StateBand
from harness.sla.data import SeriesData
from harness.sla.series import SERIES

ScopeMode = Literal["all", "steady", "faults"]
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Scope:
    """Part of a run: `all`, `steady` (outside every window) or `faults` (inside one); windows are
    fault windows already extended by their grace."""

    mode: ScopeMode
    windows: tuple[tuple[float, float], ...]
    end: float

    def span_in(self, a: float, b: float) -> bool:
        if self.mode == "all":
            return True
        overlaps = any(a <= stop and b >= start for start, stop in self.windows)
        return overlaps if self.mode == "faults" else not overlaps

    def event_in(self, event: Event) -> bool:
        start = event.started if isinstance(event, OperationEvent) else event.t
        return self.span_in(start, event.t)

    def seconds(self) -> float:
        inside = 0.0
        for start, stop in _merge(self.windows):
            inside += max(0.0, min(stop, self.end) - max(start, 0.0))
        if self.mode == "all":
            return self.end
        return inside if self.mode == "faults" else max(0.0, self.end - inside)

    def times(self, interval: float, extra: list[float]) -> list[float]:
        grid = [k * interval for k in range(1, int(self.end / interval + _EPS) + 1)]
        return sorted({t for t in [*grid, *extra, self.end] if 0.0 <= t <= self.end and self.span_in(t, t)})

    def describe(self) -> str:
        return {"all": "whole run", "steady": "outside fault windows", "faults": "during fault windows"}[self.mode]


def _merge(windows: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, stop in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


@dataclass(frozen=True, slots=True)
class BandVerdict:
    band: Band | None  # None: no data in scope
    value: float | str | None
    at: float | None  # when the worst value was seen (None for a whole-scope aggregate)
    samples: int


def _worst(candidates: list[tuple[Band, float | str, float | None]], samples: int) -> BandVerdict:
    if not candidates:
        return BandVerdict(None, None, None, 0)
    band, value, at = max(candidates, key=lambda c: BAND_ORDER[c[0]])  # the first of the worst
    return BandVerdict(band, value, at, samples)


def evaluate_band(entry: NumericBand | StateBand, data: SeriesData, scope: Scope, interval: float) -> BandVerdict:
    if isinstance(entry, StateBand):
        changes = [e.t for e in data.breakers()]
        times = scope.times(interval, changes)
        cands: list[tuple[Band, float | str, float | None]] = []
        for t in times:
            for state in data.states_at(t):
                cands.append((entry.band(state), state, t))
        return _worst(cands, len(times))
    shape = SERIES[entry.series].shape
    if shape == "window":
        value = data.over(entry.series, scope.event_in, scope.seconds())
        if value is None:
            return BandVerdict(None, None, None, 0)
        return BandVerdict(entry.band(value), value, None, 1)
    if shape == "measure":
        found = [(t, v) for t, v in data.measures(entry.series) if scope.span_in(t, t)]
        return _worst([(entry.band(v), v, t) for t, v in found], len(found))
    points = data.gauge_points(entry.series)
    times = scope.times(interval, [t for t, _ in points])
    cands = []
    for t in times:
        gauge = data.gauge(entry.series, t)
        if gauge is not None:
            cands.append((entry.band(gauge), gauge, t))
    return _worst(cands, len(cands))


@dataclass(frozen=True, slots=True)
class Firing:
    pending: float  # first evaluation where the condition held
    fired: float
    resolved: float | None
    peak: float


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    firings: tuple[Firing, ...]
    evaluations: int
    peak: float | None  # the highest value seen while the condition held (the last value if it never did)
    longest_pending: float  # the longest the condition held without (yet) firing, seconds

    @property
    def fired(self) -> bool:
        return bool(self.firings)


def evaluate_rule(rule: Rule, data: SeriesData, end: float, interval: float,
                  masked: Callable[[float], bool] | None = None) -> RuleOutcome:
    """Evaluate `rule` at `interval`, `2 * interval` ... up to `end`; at `masked` times the condition is
    taken as not holding (a scenario's fault windows, when it asks for the steady state only)."""
    assert rule.series is not None
    condition, shape = rule.condition, SERIES[rule.series].shape
    times = [k * interval for k in range(1, int(end / interval + _EPS) + 1)]
    firings: list[Firing] = []
    pending: float | None = None
    fired_at: float | None = None
    peak: float | None = None
    episode: float | None = None
    last: float | None = None
    longest = 0.0
    for t in times:
        value = data.window(rule.series, t, rule.window) if shape == "window" else data.gauge(rule.series, t)
        last = value if value is not None else last
        holds = value is not None and condition.holds(value) and not (masked is not None and masked(t))
        if holds:
            assert value is not None
            pending = t if pending is None else pending
            peak = value if peak is None else max(peak, value)
            episode = value if episode is None else max(episode, value)
            longest = max(longest, t - pending)
            if fired_at is None and t - pending + _EPS >= rule.for_:
                fired_at = t
            continue
        if fired_at is not None and pending is not None:
            firings.append(Firing(pending, fired_at, t, episode if episode is not None else 0.0))
        pending, fired_at, episode = None, None, None
    if fired_at is not None and pending is not None:
        firings.append(Firing(pending, fired_at, None, episode if episode is not None else 0.0))
    return RuleOutcome(tuple(firings), len(times), peak if peak is not None else last, longest)
