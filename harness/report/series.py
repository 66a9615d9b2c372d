"""Time series derived from a run's journal, for the timeline chart, the Allure steps and the incident report.

Everything here reads journal events only (never live objects) and is a pure function of them, so the same
journal gives the same series. Scenario time is the journal's `t`; nothing reads a clock.

- `split_scenarios`: a run's journal holds its scenarios one after another; cut it at `scenario.start`.
- `fault_windows`: `fault.start`/`fault.stop` paired by fault id (a fault never stopped ends with the scenario),
  with the fault's name and whether it is a background condition.
- `breaker_lanes`: per breaker, the spans of CLOSED / HALF_OPEN / OPEN from its transitions.
- `buckets`: per time bucket (by an operation's end, `t`), operations, failures, success rate, mean and
  nearest-rank p50/p95 latency. Nearest rank is hand-written: `statistics.quantiles` interpolates and
  refuses one sample; the chart wants a value that was actually observed.
- `queue_depth`: waiting / delayed / active / failed jobs after every job event, from a per-job state
  machine with BullMQ's states.
- `wall_anchors`: in real mode, events may carry `wall` (ISO-8601 UTC, when the event happened on the wall
  clock); the report's axis maps scenario time to wall-clock time through the nearest of them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from harness.journal import (
    BreakerEvent,
    CheckFailed,
    CheckPassed,
    Event,
    FaultStarted,
    FaultStopped,
    JobEvent,
    OperationEvent,
    QueueEvent,
    ScenarioEnded,
    ScenarioStarted,
)

BREAKER_STATES = ("CLOSED", "HALF_OPEN", "OPEN")
_NICE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
TARGET_BUCKETS = 60


@dataclass(frozen=True, slots=True)
class ScenarioJournal:
    """One scenario's slice of a run's journal."""

    name: str
    duration_s: float  # as planned (scenario.start)
    end_s: float  # when it ended (scenario.end), else its last event
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class FaultWindow:
    fault_id: str
    fault: str
    target: str
    start: float
    stop: float
    stopped: bool  # False: never stopped, drawn to the scenario's end
    params: tuple[tuple[str, str], ...]
    name: str = ""  # the scenario's `name:` for the fault (kind@target by default; empty in older journals)
    background: bool = False  # a condition of the whole run, not an incident

    @property
    def title(self) -> str:
        """The fault's name, as the scenario gave it (kind@target when it gave none)."""
        return self.name or f"{self.fault}@{self.target}"

    def label(self) -> str:
        return f"{self.title} ({self.fault_id})"


@dataclass(frozen=True, slots=True)
class BreakerSpan:
    state: str
    start: float
    stop: float


@dataclass(frozen=True, slots=True)
class BreakerLane:
    breaker: str
    spans: tuple[BreakerSpan, ...]
    transitions: int


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float
    end: float
    total: int
    failed: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return None if self.total == 0 else (self.total - self.failed) / self.total


@dataclass(frozen=True, slots=True)
class QueuePoint:
    t: float
    waiting: int
    delayed: int
    active: int
    failed: int


@dataclass(frozen=True, slots=True)
class ScenarioSeries:
    name: str
    end_s: float  # the chart's x range is [0, end_s]
    bucket_s: float
    faults: tuple[FaultWindow, ...]
    breakers: tuple[BreakerLane, ...]
    buckets: tuple[Bucket, ...]
    queue: tuple[QueuePoint, ...]  # empty when the journal has no job events
    vendors: tuple[str, ...]


def split_scenarios(events: Sequence[Event]) -> list[ScenarioJournal]:
    """Cut a run's journal at each `scenario.start`. Events logged after a scenario's check results and
    before the next start (the next lab being built) belong to the next scenario; events before the first
    start belong to the first."""
    segments: list[list[Event]] = []
    pending: list[Event] = []
    current: list[Event] | None = None
    checked = False
    for event in events:
        if isinstance(event, ScenarioStarted):
            current = [*pending, event]
            segments.append(current)
            pending, checked = [], False
        elif current is None or (checked and not isinstance(event, CheckPassed | CheckFailed)):
            pending.append(event)
        else:
            current.append(event)
            checked = checked or isinstance(event, CheckPassed | CheckFailed)
    if pending and segments and not checked:
        segments[-1].extend(pending)
    return [_scenario_journal(segment) for segment in segments]


def _scenario_journal(events: list[Event]) -> ScenarioJournal:
    start = next(e for e in events if isinstance(e, ScenarioStarted))
    ended = [e for e in events if isinstance(e, ScenarioEnded)]
    end = ended[0].t if ended else max(e.t for e in events)
    return ScenarioJournal(name=start.scenario, duration_s=start.duration_s, end_s=max(end, 0.0),
                           events=tuple(events))


def fault_windows(events: Sequence[Event], end_s: float) -> tuple[FaultWindow, ...]:
    started: dict[str, FaultStarted] = {}
    windows: list[FaultWindow] = []
    for event in events:
        if isinstance(event, FaultStarted):
            started[event.fault_id] = event
        elif isinstance(event, FaultStopped) and event.fault_id in started:
            windows.append(_window(started.pop(event.fault_id), event.t, stopped=True))
    windows += [_window(s, max(end_s, s.t), stopped=False) for s in started.values()]
    return tuple(sorted(windows, key=lambda w: (w.start, w.fault_id)))


def _window(start: FaultStarted, stop: float, *, stopped: bool) -> FaultWindow:
    params = tuple((key, str(value)) for key, value in sorted(start.params.items()))
    return FaultWindow(fault_id=start.fault_id, fault=start.fault, target=start.target, start=start.t, stop=stop,
                       stopped=stopped, params=params, name=start.name, background=start.background)


def breaker_lanes(events: Sequence[Event], end_s: float) -> tuple[BreakerLane, ...]:
    """One lane per breaker that transitioned, sorted by name. The state before the first transition is that
    transition's `from_state`."""
    transitions: dict[str, list[BreakerEvent]] = {}
    for event in events:
        if isinstance(event, BreakerEvent):
            transitions.setdefault(event.breaker, []).append(event)
    lanes = []
    for name in sorted(transitions):
        spans: list[BreakerSpan] = []
        state, since = transitions[name][0].from_state, 0.0
        for tr in transitions[name]:
            if tr.t > since:
                spans.append(BreakerSpan(state=state, start=since, stop=tr.t))
            state, since = tr.to_state, tr.t
        if end_s > since:
            spans.append(BreakerSpan(state=state, start=since, stop=end_s))
        lanes.append(BreakerLane(breaker=name, spans=tuple(spans), transitions=len(transitions[name])))
    return tuple(lanes)


def bucket_width(end_s: float) -> float:
    """The smallest nice width that gives at most TARGET_BUCKETS buckets."""
    for width in _NICE_BUCKETS:
        if end_s / width <= TARGET_BUCKETS:
            return width
    return _NICE_BUCKETS[-1]


def nearest_rank(sorted_values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of a non-empty, sorted sequence."""
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def buckets(events: Sequence[Event], end_s: float, width: float) -> tuple[Bucket, ...]:
    """Operations by the bucket their end time falls in; an operation ending at `end_s` counts in the last."""
    count = max(1, math.ceil(end_s / width))
    durations: list[list[float]] = [[] for _ in range(count)]
    failures = [0] * count
    for event in events:
        if isinstance(event, OperationEvent):
            index = min(max(int(event.t // width), 0), count - 1)
            durations[index].append(event.duration_ms)
            failures[index] += 0 if event.ok else 1
    out = []
    for i in range(count):
        values = sorted(durations[i])
        out.append(Bucket(
            start=i * width, end=min((i + 1) * width, max(end_s, width)), total=len(values), failed=failures[i],
            mean_ms=round(sum(values) / len(values), 3) if values else None,
            p50_ms=nearest_rank(values, 50) if values else None,
            p95_ms=nearest_rank(values, 95) if values else None,
        ))
    return tuple(out)


def _next_state(event: JobEvent, current: str | None) -> str | None:
    match event.kind:
        case "job.added":
            return "delayed" if (event.delay_s or 0) > 0 else "waiting"
        case "job.promoted" | "job.retried":
            return "waiting"
        case "job.started":
            return "active"
        case "job.completed":
            return "completed"
        case "job.retry":
            return "delayed" if (event.delay_s or 0) > 0 else "waiting"
        case "job.failed":
            return "failed"
        case "job.stalled":
            return "failed" if event.failed else "waiting"
    return current  # job.duplicated, job.lock_lost: the job's state does not change


def queue_depth(events: Sequence[Event]) -> tuple[QueuePoint, ...]:
    """Waiting / delayed / active / failed jobs (all queues together) after each job or removal event.
    Failed jobs removed by retention or clean leave the failed count."""
    states: dict[tuple[str, str], str] = {}
    counts = {"waiting": 0, "delayed": 0, "active": 0, "failed": 0, "completed": 0}
    removed_failed = 0
    points: list[QueuePoint] = []
    for event in events:
        if isinstance(event, JobEvent):
            key = (event.queue, event.job_id)
            before = states.get(key)
            after = _next_state(event, before)
            if after is not None and after != before:
                if before is not None:
                    counts[before] -= 1
                counts[after] += 1
                states[key] = after
        elif isinstance(event, QueueEvent) and event.kind == "queue.removed" and event.state == "failed":
            removed_failed += event.count or 0
        else:
            continue
        point = QueuePoint(t=event.t, waiting=counts["waiting"], delayed=counts["delayed"], active=counts["active"],
                           failed=max(0, counts["failed"] - removed_failed))
        if points and points[-1].t == point.t:
            points[-1] = point
        else:
            points.append(point)
    return tuple(points)


def final_job_states(events: Sequence[Event]) -> dict[tuple[str, str], str]:
    """Each job's state (waiting, delayed, active, completed, failed) after the last job event, by
    (queue, job id)."""
    states: dict[tuple[str, str], str] = {}
    for event in events:
        if isinstance(event, JobEvent):
            state = _next_state(event, states.get((event.queue, event.job_id)))
            if state is not None:
                states[(event.queue, event.job_id)] = state
    return states


def derive(scenario: ScenarioJournal) -> ScenarioSeries:
    end = max(scenario.end_s, 1.0)
    width = bucket_width(end)
    events = scenario.events
    vendors = sorted({e.vendor for e in events if isinstance(e, OperationEvent)})
    return ScenarioSeries(
        name=scenario.name, end_s=end, bucket_s=width, faults=fault_windows(events, end),
        breakers=breaker_lanes(events, end), buckets=buckets(events, end, width), queue=queue_depth(events),
        vendors=tuple(vendors),
    )


@dataclass(frozen=True, slots=True)
class WallAnchors:
    """Scenario time onto wall-clock time (UTC), from the journal's `wall` stamps (real mode only): a time maps
    through the stamped event nearest to it, at the run's time scale (scenario seconds per wall second)."""

    points: tuple[tuple[float, datetime], ...]  # (t, wall), by t
    time_scale: float = 1.0

    def at(self, t: float) -> datetime:
        times = [p[0] for p in self.points]
        i = bisect.bisect_left(times, t)
        near = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: (abs(times[j] - t), j))
        anchor_t, anchor_wall = self.points[near]
        return anchor_wall + timedelta(seconds=(t - anchor_t) / (self.time_scale or 1.0))

    def label(self, t: float) -> str:
        return self.at(t).strftime("%H:%M:%S")


def _wall(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def wall_anchors(events: Sequence[Event], time_scale: float = 1.0) -> WallAnchors | None:
    """The journal's wall stamps (`wall` on an event, real mode), or None when it has none."""
    points: dict[float, datetime] = {}
    for event in events:
        stamp = _wall(getattr(event, "wall", None))
        if stamp is not None and event.t not in points:
            points[event.t] = stamp
    if not points:
        return None
    return WallAnchors(points=tuple(sorted(points.items())), time_scale=time_scale)
