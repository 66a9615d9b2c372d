"""What checks see of a run: a read-only view of its journal, with the questions checks ask of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.journal import BreakerEvent, Event, FaultStarted, FaultStopped, OperationEvent, ScenarioStarted


@dataclass(frozen=True, slots=True)
class FaultWindow:
    fault_id: str
    fault: str
    target: str
    start: float
    stop: float  # the scenario's end when the fault never stopped


class CheckContext:
    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        starts = [e for e in self.events if isinstance(e, ScenarioStarted)]
        self.duration = starts[0].duration_s if starts else max((e.t for e in self.events), default=0.0)
        self.operations = [e for e in self.events if isinstance(e, OperationEvent)]
        self._transitions = [e for e in self.events if isinstance(e, BreakerEvent)]
        stops = {e.fault_id: e.t for e in self.events if isinstance(e, FaultStopped)}
        self.faults = [
            FaultWindow(e.fault_id, e.fault, e.target, e.t, stops.get(e.fault_id, self.duration))
            for e in self.events
            if isinstance(e, FaultStarted)
        ]

    def faults_on(self, vendor: str) -> list[FaultWindow]:
        return [f for f in self.faults if f.target == vendor]

    def transitions(self, breaker: str) -> list[BreakerEvent]:
        return [e for e in self._transitions if e.breaker == breaker]

    def operations_on(self, vendor: str | None) -> list[OperationEvent]:
        return [op for op in self.operations if vendor is None or op.vendor == vendor]

    def outside_faults(self, ops: Sequence[OperationEvent], grace: float) -> list[OperationEvent]:
        """Operations that overlap no fault window on their vendor, each window extended by `grace`."""
        kept = []
        for op in ops:
            windows = self.faults_on(op.vendor)
            if not any(op.started <= w.stop + grace and op.t >= w.start for w in windows):
                kept.append(op)
        return kept
