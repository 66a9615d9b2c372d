"""The run's own events: scenario start and end, faults, workload operations, check outcomes."""

from __future__ import annotations

from typing import Literal

from harness.journal.base import Event, Scalar


class ScenarioStarted(Event):
    kind: Literal["scenario.start"] = "scenario.start"
    scenario: str
    file: str
    seed: int
    mode: str
    duration_s: float


class ScenarioEnded(Event):
    kind: Literal["scenario.end"] = "scenario.end"
    scenario: str
    operations: int
    in_flight_cancelled: int


class FaultStarted(Event):
    kind: Literal["fault.start"] = "fault.start"
    fault_id: str
    fault: str
    target: str
    params: dict[str, Scalar]
    name: str = ""  # the scenario's `name:` for the fault, else kind@target
    background: bool = False  # a condition of the whole run, not an incident (recovery checks ignore it)


class FaultStopped(Event):
    kind: Literal["fault.stop"] = "fault.stop"
    fault_id: str
    fault: str
    target: str
    name: str = ""
    background: bool = False


class FaultFailed(Event):
    kind: Literal["fault.error"] = "fault.error"
    fault_id: str
    fault: str
    target: str
    action: Literal["start", "stop"]
    error: str


class OperationEvent(Event):
    """One workload operation finished (`t` is its end); what a user of the integration saw."""

    kind: Literal["operation"] = "operation"
    op_id: int
    operation: str
    vendor: str
    started: float
    duration_ms: float
    ok: bool
    error: str | None


class OperationDropped(Event):
    """The workload wanted to start an operation but too many were in flight."""

    kind: Literal["operation.dropped"] = "operation.dropped"
    operation: str
    vendor: str
    in_flight: int


class CheckPassed(Event):
    kind: Literal["check.passed"] = "check.passed"
    check: str
    observed: Scalar
    threshold: str


class CheckFailed(Event):
    kind: Literal["check.failed"] = "check.failed"
    check: str
    observed: Scalar
    threshold: str


class StepDone(Event):
    """An operator step of the scenario was carried out (parameters only: never a credential)."""

    kind: Literal["step.done"] = "step.done"
    step_id: str
    action: str
    vendor: str
    params: dict[str, Scalar]


class StepFailed(Event):
    kind: Literal["step.error"] = "step.error"
    step_id: str
    action: str
    vendor: str
    error: str
