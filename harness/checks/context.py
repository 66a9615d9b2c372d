"""What checks see of a run: a read-only view of its journal, with the questions checks ask of it.

Faults are windows from the journal's `fault.start` / `fault.stop` (measured times in real mode). A
background fault (`background: true`, a condition of the whole run) is not an incident: `incidents_on`,
`first_incident`, `last_incident` and `outside_faults` leave it out. A fault that never stopped ends with the
scenario (`ended` False), as does one the runner removed only when the scenario's time was up: nothing can
be judged "after" it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.anchors import FaultAnchor
from harness.checks.event_domains import system_vendor
from harness.journal import (
    BreakerEvent,
    Event,
    FaultStarted,
    FaultStopped,
    OperationEvent,
    RequestEvent,
    ScenarioStarted,
)


@dataclass(frozen=True, slots=True)
class FaultWindow:
    fault_id: str
    fault: str
    target: str
    start: float
    stop: float  # the scenario's end when the fault never stopped
    name: str = ""
    background: bool = False
    ended: bool = True  # False: no fault.stop before the scenario's end (the runner removed it when time was up)

    def label(self) -> str:
        return self.name or f"{self.fault}@{self.target}"


@dataclass(frozen=True, slots=True)
class Pick:
    """The fault a check is about, or why there is none (`why`, for a "matched nothing" detail)."""

    fault: FaultWindow | None
    why: str = ""
    named: bool = False  # the check named the fault (`fault:`), rather than taking the first or last


class CheckContext:
    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        starts = [e for e in self.events if isinstance(e, ScenarioStarted)]
        self.duration = starts[0].duration_s if starts else max((e.t for e in self.events), default=0.0)
        self.operations = [e for e in self.events if isinstance(e, OperationEvent)]
        self._transitions = [e for e in self.events if isinstance(e, BreakerEvent)]
        self._requests = [e for e in self.events if isinstance(e, RequestEvent)]
        stops = {e.fault_id: e.t for e in self.events if isinstance(e, FaultStopped)}
        # The runner removes every fault still active when the scenario's time is up (fault.stop at or after the
        # planned end): such a fault lasted the whole run, it did not end within it. A fault's own `for:` always
        # stops it before the end (the runner schedules no stop at or past it).
        self.faults = [
            FaultWindow(e.fault_id, e.fault, e.target, e.t, stops.get(e.fault_id, self.duration), e.name,
                        e.background, stops.get(e.fault_id, self.duration) < self.duration)
            for e in self.events
            if isinstance(e, FaultStarted)
        ]

    # -- faults --------------------------------------------------------------------------------------------

    def faults_on(self, vendor: str) -> list[FaultWindow]:
        return [f for f in self.faults if f.target == vendor]

    def incidents(self, vendor: str | None = None) -> list[FaultWindow]:
        """Faults that are incidents, not background conditions (on `vendor`, or on any)."""
        return [f for f in self.faults if not f.background and vendor in (None, f.target)]

    def named(self, name: str) -> FaultWindow | None:
        return next((f for f in self.faults if f.label() == name), None)

    def pick(self, vendor: str, name: str | None, *, which: str) -> Pick:
        """The fault named `name`, else the `first` (by start) or `last` (by end) incident on `vendor`."""
        if name is not None:
            found = self.named(name)
            return Pick(found, named=True) if found is not None else Pick(
                None, f"no fault named {name!r} started in this run")
        incidents = self.incidents(vendor)
        if not incidents:
            background = len(self.faults_on(vendor))
            aside = f" ({background} background fault(s) are conditions, not incidents)" if background else ""
            return Pick(None, f"no fault targeted {vendor}{aside}")
        if which == "first":
            return Pick(min(incidents, key=lambda f: f.start))
        return Pick(max(incidents, key=lambda f: (not f.ended, f.stop)))

    def after_end(self, picked: Pick) -> tuple[float | None, str]:
        """When the picked fault ended, or why there is no such time."""
        fault = picked.fault
        if fault is None:
            return None, picked.why
        if not fault.ended and picked.named:
            return None, f"fault {fault.label()} never ended (it lasts to the end of the run)"
        if not fault.ended:
            return None, (f"fault {fault.label()} never ended (it lasts to the end of the run): mark it "
                          "background: true if it is a condition of the whole run, or name the fault to judge "
                          "with fault:")
        return fault.stop, ""

    def resolve(self, point: float | FaultAnchor) -> tuple[float | None, str]:
        """A scenario time: a number as it is, a fault anchor from the journal; or why it cannot be had."""
        if not isinstance(point, FaultAnchor):
            return point, ""
        fault = self.named(point.fault)
        if fault is None:
            return None, f"no fault named {point.fault!r} started in this run"
        if point.edge == "end" and not fault.ended:
            return None, f"fault {point.fault} never ended, so '{point.describe()}' never came"
        return (fault.start if point.edge == "start" else fault.stop) + point.offset, ""

    def window(self, between: tuple[float | FaultAnchor, float | FaultAnchor] | None
               ) -> tuple[tuple[float, float] | None, str]:
        """`between` resolved to scenario times ((0, inf) when absent), or why it cannot be."""
        if between is None:
            return (0.0, float("inf")), ""
        begin, why = self.resolve(between[0])
        end, why_end = self.resolve(between[1])
        if begin is None or end is None:
            return None, why or why_end
        return (begin, end), ""

    # -- breakers and operations -------------------------------------------------------------------------

    def transitions(self, breaker: str) -> list[BreakerEvent]:
        return [e for e in self._transitions if e.breaker == breaker]

    def breaker_calls(self, breaker: str) -> int:
        """Requests sent through `breaker` (a breaker is named as its client's requests name their vendor)."""
        return sum(1 for e in self._requests if e.vendor == breaker)

    def breakers(self) -> list[str]:
        """Every breaker the journal shows (transitions or requests), sorted."""
        return sorted({e.breaker for e in self._transitions} | {e.vendor for e in self._requests})

    def unseen(self, breaker: str) -> str | None:
        """Why `breaker` cannot be judged (it made no transition and let no request through), else None."""
        if self.transitions(breaker) or self.breaker_calls(breaker):
            return None
        seen = ", ".join(self.breakers()) or "none"
        return f"breaker {breaker} made no transition and saw no request (breakers in this run: {seen})"

    @staticmethod
    def breaker_vendor(breaker: str) -> str:
        """The vendor a breaker calls: a failover system's (`epic_prod` -> epic), else its own name."""
        return system_vendor(breaker) or breaker

    def operations_on(self, vendor: str | None) -> list[OperationEvent]:
        return [op for op in self.operations if vendor is None or op.vendor == vendor]

    def outside_faults(self, ops: Sequence[OperationEvent], grace: float) -> list[OperationEvent]:
        """Operations that overlap no incident window on their vendor, each window extended by `grace`."""
        kept = []
        for op in ops:
            windows = self.incidents(op.vendor)
            if not any(op.started <= w.stop + grace and op.t >= w.start for w in windows):
                kept.append(op)
        return kept
