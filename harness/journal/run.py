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


class LabLag(Event):
    """Real mode only (never in a virtual journal): how late the lab itself was, in scenario seconds. `source`
    loop: the event-loop sampler woke `late_s` after its tick was due at `planned` (only samples past a quarter
    of the tolerance are journaled; `lab.timing` has them all); fault / step: a fault switch or an operator step
    landed `late_s` after its planned scenario time, `call_s` of it spent in the proxy's or simulator's admin
    API calls that carried it out."""

    kind: Literal["lab.lag"] = "lab.lag"
    source: Literal["loop", "fault", "step"]
    what: str  # "event loop", "fault f2 start", "fault f2 stop", "step s1 revoke_credential@epic"
    planned: float
    late_s: float
    call_s: float | None = None


class LabTiming(Event):
    """Real mode only: the lab's lateness over the whole scenario against the scenario's `lab.max_lateness`
    (scenario seconds). `exceeded`: the run is INCONCLUSIVE, whatever its checks say."""

    kind: Literal["lab.timing"] = "lab.timing"
    time_scale: float
    tolerance_s: float
    samples: int  # event-loop samples taken
    loop_max_s: float  # the longest event-loop stall past its tick
    timeline_max_s: float  # the latest fault switch or operator step, against its planned time
    call_max_s: float  # the slowest admin API call (proxy toxics, simulator chaos, operator steps)
    worst: str  # the worst figure in words: "fault f2 started 3.4 s late"
    exceeded: bool


class LabInconclusive(Event):
    """The lab could not judge this scenario: a fault it could not inject, a step it could not carry out, a
    simulator that would not start, or its own lateness past tolerance. The verdict is INCONCLUSIVE."""

    kind: Literal["lab.inconclusive"] = "lab.inconclusive"
    reason: str


class LabAborted(Event):
    """The run was interrupted (Ctrl-C, SIGTERM): faults were stopped and what had happened is kept."""

    kind: Literal["lab.aborted"] = "lab.aborted"
    signal: str  # "SIGINT" or "SIGTERM"
