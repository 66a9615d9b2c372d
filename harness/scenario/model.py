"""The scenario file format, as typed models. Validation only: running is `harness.runner`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, ModelWrapValidatorHandler, model_validator
from pydantic import Tag as UnionTag

from harness.checks.models import Expectation
from harness.checks.references import SetupFacts, check_references
from harness.durations import Duration, Rate, format_duration
from harness.faults.catalogue import Fault, SimulatorFault
from harness.names import OperationName, VendorName
from harness.scenario.issues import Issues, located
from harness.steps.catalogue import Step
from harness.sut.model import SutHttpStream, SutSettings

Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=40)]

#: Most workload operations one scenario may start (the sum over its streams of rate x time running). Measured
#: in virtual mode (`ehrlab run`, one read_patient stream, 30,000 operations): about 6.5 KB of memory and 0.6 ms
#: each, so the limit is about 650 MB and a minute; a heavier load is `ehrlab load`'s (locust), not a scenario's.
MAX_ARRIVALS = 100_000
#: Most synthetic patients seeded per vendor: seeding is about 4 ms and 24 KB each in virtual mode (10,000 for one
#: vendor took 40 s and 320 MB), so 2,000 on each of four vendors is about 30 s and 200 MB before the run starts.
MAX_PATIENTS = 2_000
#: Longest lists a scenario may hold (the fault-overlap check compares every pair of faults).
MAX_WORKLOAD, MAX_FAULTS, MAX_STEPS, MAX_EXPECTATIONS = 50, 500, 1000, 500


class WorkloadStream(BaseModel):
    """One stream of operations against one vendor at a rate (an open model: arrivals do not wait
    for earlier operations to finish, like k6's constant-arrival-rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: OperationName
    vendor: VendorName
    rate: Rate
    arrival: Literal["constant", "poisson"] = "constant"
    start: Duration = 0.0
    stop: Duration | None = None
    max_in_flight: int = Field(default=200, ge=1, le=10_000)

    def expected_arrivals(self, duration: float) -> float:
        """How many operations the stream starts on average within a scenario of `duration`."""
        end = min(duration, self.stop if self.stop is not None else duration)
        return self.rate * max(0.0, end - self.start)


#: The tags of the workload's two kinds of stream (pydantic puts them in an error's location; the loader skips
#: them, `harness.scenario.loader._data_path`): spaces, so never a key of the data.
STREAM_TAGS = ("vendor stream", "sut stream")


def _stream_kind(value: object) -> str:
    operation = value.get("operation") if isinstance(value, dict) else getattr(value, "operation", None)
    return STREAM_TAGS[1] if operation == "sut_http" else STREAM_TAGS[0]


#: A workload stream: a vendor operation through the lab's integration, or an HTTP request to an external SUT.
AnyStream = Annotated[Annotated[WorkloadStream, UnionTag(STREAM_TAGS[0])]
                      | Annotated[SutHttpStream, UnionTag(STREAM_TAGS[1])], Discriminator(_stream_kind)]


class SyncSetup(BaseModel):
    """`setup.sync`: wire the sync pipeline (queue, consent, sync worker, reconciliation, audit mirror) to
    Medplum, with runbook 002 §2.2's queue defaults unless given (`harness.pipeline`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int = Field(default=10, ge=1, le=1000, description="patient tokens with a CARE consent")
    concurrency: int = Field(default=5, ge=1, le=100, description="worker concurrency (002 §2.2: 5)")
    monitor: bool = Field(default=True, description="the provider monitor's active health checks (every 30 s)")


class FailoverSetup(BaseModel):
    """`setup.failover`: the integration's system registry with a primary and fallback vendors, and patients
    registered at all of them under one EMPI identifier (`harness.failover_layer`; runbook 004)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: VendorName
    fallbacks: list[VendorName] = Field(min_length=1)
    patients: int = Field(default=10, ge=1, le=1000, description="patients shared by every system")

    @model_validator(mode="after")
    def _distinct(self) -> FailoverSetup:
        if self.primary in self.fallbacks or len(set(self.fallbacks)) != len(self.fallbacks):
            raise located(("fallbacks",), "the primary and the fallbacks must be different vendors")
        return self


class Setup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int = Field(default=20, ge=1, le=MAX_PATIENTS, description="synthetic patients seeded per vendor")
    vendors: list[VendorName] | None = Field(
        default=None, description="the vendors this scenario configures; if given, every reference must be one")
    sync: SyncSetup | None = Field(default=None, description="wire the sync pipeline to Medplum")
    failover: FailoverSetup | None = Field(default=None, description="read failover across vendors")
    resilience: list[VendorName] = Field(default_factory=list, description=(
        "vendors whose connector sits behind a provider monitor, the cached-context fallback and feature flags "
        "(open_chart, record_vitals, set_flag, emergency_shutdown, staged_recovery)"))


class LabSettings(BaseModel):
    """`lab`: what the lab itself must achieve for its verdict to count (real mode; `harness.lateness`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_lateness: Duration = Field(default=1.0, description=(
        "scenario seconds the lab may run late (an event-loop stall, a fault switch or operator step landing "
        "after its planned time) before a real-mode run is INCONCLUSIVE instead of judged; at --time-scale 40, "
        "1 s of scenario time is 25 ms of wall time"))

    @model_validator(mode="after")
    def _positive(self) -> LabSettings:
        if self.max_lateness <= 0:
            raise located(("max_lateness",), "max_lateness must be positive")
        return self


class Scenario(BaseModel):
    """A scenario file. Besides each part's own rules, the expectations are checked against the rest of the
    file once it is valid (`harness.checks.references`): breakers by name or resolved from a vendor, faults
    named by checks and anchors, `events.where` values that only the setup can tell; every such problem is
    reported with its field (`expectations[i].breaker` ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)
    description: str
    runbook: list[str] = Field(min_length=1, max_length=50, description="citations: file and section")
    tags: list[Tag] = Field(default_factory=list, max_length=50, description="for `ehrlab run --only/--skip`")
    duration: Duration
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1, description="a 64-bit integer")
    drain: Duration = Field(default=30.0, description="how long in-flight operations may finish after the end")
    setup: Setup = Setup()
    lab: LabSettings = LabSettings()
    sut: SutSettings | None = Field(default=None, description="an external system under test (real mode only)")
    workload: list[AnyStream] = Field(min_length=1, max_length=MAX_WORKLOAD)
    faults: list[Fault] = Field(default_factory=list, max_length=MAX_FAULTS)
    steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS, description="operator steps on the timeline")
    expectations: list[Expectation] = Field(min_length=1, max_length=MAX_EXPECTATIONS)

    @model_validator(mode="after")
    def _timeline_fits(self) -> Scenario:
        # every problem at once, each at its item (harness.scenario.issues): `ehrlab validate` lists them all
        issues = Issues()
        if self.duration <= 0:
            issues.add(("duration",), "duration must be positive")
            issues.raise_if_any()  # every time in the file would be "after the end": that says nothing more
        for i, fault in enumerate(self.faults):
            if fault.at >= self.duration:
                issues.add(("faults", i, "at"),
                           f"faults[{i}] starts at {fault.at:g}s, at or after the end ({self.duration:g}s)")
        for i, stream in enumerate(self.workload):
            if stream.stop is not None and stream.stop <= stream.start:
                issues.add(("workload", i, "stop"), f"workload[{i}] stops before it starts")
            elif stream.start >= self.duration:
                issues.add(("workload", i, "start"), f"workload[{i}] starts at {stream.start:g}s, at or after the end "
                                                     f"({self.duration:g}s): it would start nothing")
        self._arrivals_bounded(issues)
        for i, step in enumerate(self.steps):
            if step.at >= self.duration:
                issues.add(("steps", i, "at"),
                           f"steps[{i}] is at {step.at:g}s, at or after the end ({self.duration:g}s)")
        self._no_contradicting_faults(issues)
        self._only_configured_vendors(issues)
        self._pipeline_is_wired(issues)
        self._steps_possible(issues)
        for i, stream in enumerate(self.workload):
            if isinstance(stream, SutHttpStream) and self.sut is None:
                issues.add(("workload", i, "operation"), f"workload[{i}] sut_http needs a sut: section")
        configured = self.setup.vendors
        for vendor in self.sut.vendors() if self.sut is not None and configured is not None else []:
            if configured is not None and vendor not in configured:
                issues.add(("sut", "env"), f"sut.env refers to vendor {vendor!r}, which setup.vendors does not "
                                           f"configure ({', '.join(configured)})")
        issues.raise_if_any()
        return self

    def _arrivals_bounded(self, issues: Issues) -> None:
        """The workload's operations, rate x time summed over the streams, within MAX_ARRIVALS: the problem is
        placed at the busiest stream's rate."""
        each = [stream.expected_arrivals(self.duration) for stream in self.workload]
        total = sum(each)
        if total <= MAX_ARRIVALS:
            return
        k = max(range(len(each)), key=lambda i: (each[i], -i))
        stream = self.workload[k]
        issues.add(("workload", k, "rate"),
                   f"the workload would start about {total:,.0f} operations, more than the lab's limit of "
                   f"{MAX_ARRIVALS:,} per scenario (workload[{k}]: {stream.rate:g}/s for "
                   f"{format_duration(each[k] / stream.rate)} is {each[k]:,.0f}): lower the rate or the duration, "
                   "or use `ehrlab load` for a load test")

    def _steps_possible(self, issues: Issues) -> None:
        """Operator steps an operator could not carry out are the file's mistake (exit 2), not the lab's: a
        credential deployed, retired or revoked as `new` before the vendor issued one, a drift on a patient
        that was never seeded."""
        from harness.steps.catalogue import (
            AddCredential,
            DeployCredential,
            Drift,
            RetireCredential,
            RevokeConsent,
            RevokeCredential,
        )

        order = sorted(range(len(self.steps)), key=lambda i: (self.steps[i].at, i))  # the runner's order
        added: set[str] = set()
        for i in order:
            step = self.steps[i]
            if isinstance(step, AddCredential):
                added.add(step.vendor)
            elif step.vendor not in added and (isinstance(step, DeployCredential) or (
                    isinstance(step, RetireCredential | RevokeCredential) and step.which == "new")):
                issues.add(("steps", i, "action"), f"steps[{i}] {step.action} needs an add_credential step for "
                                                   f"{step.vendor} before it (the vendor has issued no new credential)")
            if isinstance(step, Drift) and step.patient >= self.setup.patients:
                issues.add(("steps", i, "patient"), f"steps[{i}] drifts patient {step.patient} (0-based), but "
                                                    f"setup.patients seeds {self.setup.patients}")
            sync = self.setup.sync
            if isinstance(step, RevokeConsent) and sync is not None and step.patient >= sync.patients:
                issues.add(("steps", i, "patient"), f"steps[{i}] {step.action} names patient {step.patient} (0-based), "
                                                    f"but setup.sync seeds {sync.patients}")

    def _pipeline_is_wired(self, issues: Issues) -> None:
        from harness.steps.catalogue import FLAG_STEPS, PIPELINE_STEPS
        from harness.workload.operations import PIPELINE_OPERATIONS, RESILIENT_OPERATIONS

        layered = set(self.setup.resilience)
        if self.setup.sync is not None and "medplum" in layered:
            issues.add(("setup", "resilience"),
                       "setup.resilience names medplum, which setup.sync already puts behind the pipeline's "
                       "own monitor, fallback and flags: remove it from setup.resilience")
        for i, stream in enumerate(self.workload):
            if stream.operation == "read_patient_failover" and (
                    self.setup.failover is None or stream.vendor != self.setup.failover.primary):
                issues.add(("workload", i, "operation"),
                           f"workload[{i}] read_patient_failover needs setup.failover with {stream.vendor} "
                           "as its primary")
            if stream.operation in RESILIENT_OPERATIONS and stream.vendor not in layered:
                issues.add(("workload", i, "operation"),
                           f"workload[{i}] operation {stream.operation!r} goes through {stream.vendor}'s "
                           f"resilience layer: add {stream.vendor} to setup.resilience")
        for i, step in enumerate(self.steps):
            if isinstance(step, FLAG_STEPS) and step.vendor not in layered and not (
                    step.vendor == "medplum" and self.setup.sync is not None):
                issues.add(("steps", i, "action"),
                           f"steps[{i}] action {step.action!r} needs {step.vendor}'s feature flags: add "
                           f"{step.vendor} to setup.resilience")
        if self.setup.sync is not None:
            return
        for i, stream in enumerate(self.workload):
            if stream.operation in PIPELINE_OPERATIONS:
                issues.add(("workload", i, "operation"),
                           f"workload[{i}] operation {stream.operation!r} needs the sync pipeline: "
                           "add setup.sync")
        for i, step in enumerate(self.steps):
            if isinstance(step, PIPELINE_STEPS):
                issues.add(("steps", i, "action"),
                           f"steps[{i}] action {step.action!r} needs the sync pipeline: add setup.sync")

    def _no_contradicting_faults(self, issues: Issues) -> None:
        """Two simulator faults of one kind on one target, overlapping in time with different parameters,
        cannot both hold (which status does an outage answer, 503 or a dropped connection?). Toxics of
        one kind can: a proxy stacks them, as Toxiproxy does. Each fault is named once, with the first earlier
        fault it contradicts (not once per pair: 500 such faults would be 125,000 lines)."""
        simulator = [(i, f, f.params()) for i, f in enumerate(self.faults) if isinstance(f, SimulatorFault)]
        for n, (j, b, b_params) in enumerate(simulator):
            b_end = self.duration if b.for_ is None else b.at + b.for_
            for i, a, a_params in simulator[:n]:
                if a.kind != b.kind or a.target != b.target or a_params == b_params:
                    continue
                a_end = self.duration if a.for_ is None else a.at + a.for_
                if a.at < b_end and b.at < a_end:
                    issues.add(
                        ("faults", j), f"faults[{i}] and faults[{j}] are both {a.kind} on {a.target}, overlap in time "
                        f"({a.at:g}-{a_end:g}s and {b.at:g}-{b_end:g}s) and differ ({a_params} vs {b_params}): "
                        "they cannot both hold")
                    break

    def _only_configured_vendors(self, issues: Issues) -> None:
        if self.setup.vendors is None:
            return
        allowed = set(self.setup.vendors)
        for section, items in (("workload", self.workload), ("faults", self.faults), ("steps", self.steps),
                               ("expectations", self.expectations)):
            for i, item in enumerate(items):
                if isinstance(item, SutHttpStream):
                    continue
                field = "vendor" if getattr(item, "vendor", None) else "target"
                vendor = getattr(item, field, None)
                if vendor and vendor not in allowed:
                    issues.add((section, i, field),
                               f"{section}[{i}] refers to vendor {vendor!r}, which setup.vendors does not "
                               f"configure ({', '.join(self.setup.vendors)})")

    @model_validator(mode="wrap")
    @classmethod
    def _references_hold(cls, data: object, handler: ModelWrapValidatorHandler[Scenario]) -> Scenario:
        """Expectations against the rest of the file (`harness.checks.references`), once the file is valid;
        `vendor:` breakers come back resolved to the setup's breaker."""
        scenario = handler(data)
        expectations, problems = check_references(scenario.expectations, scenario.setup_facts())
        issues = Issues()
        for problem in problems:
            issues.add(problem.loc, problem.message)
        issues.raise_if_any()
        return scenario.model_copy(update={"expectations": expectations})

    def breakers(self) -> dict[str, str]:
        """Every circuit breaker the lab builds for this scenario, by journal name, with its vendor: the lab's
        client of each vendor has one named by the vendor (`harness.vendors`); with `setup.failover` each
        system of the registry has one named by the system, `<vendor>_prod` (`harness.failover_layer`)."""
        found = {vendor: vendor for vendor in self.vendors()}
        if self.setup.failover is not None:
            for vendor in (self.setup.failover.primary, *self.setup.failover.fallbacks):
                found[f"{vendor}_prod"] = vendor
        return found

    def setup_facts(self) -> SetupFacts:
        """What checks need to know of the setup: breakers, which lab clients carry traffic (a workload stream
        other than the failover reads, a resilience layer, the sync pipeline's Medplum, an operator's breaker
        step), failover systems, and the faults' names."""
        busy = {s.vendor for s in self.workload
                if s.operation != "read_patient_failover" and isinstance(s, WorkloadStream)}
        busy |= set(self.setup.resilience) | ({"medplum"} if self.setup.sync is not None else set())
        busy |= {step.vendor for step in self.steps if step.action == "breaker"}
        breakers = self.breakers()
        systems = frozenset(name for name, vendor in breakers.items() if name != vendor)
        return SetupFacts(breakers=breakers, busy=frozenset(busy), systems=systems,
                          faults=tuple(fault.label() for fault in self.faults))

    def vendors(self) -> list[str]:
        """Every vendor the scenario touches, in first-mention order."""
        seen: dict[str, None] = {}
        for stream in self.workload:
            if isinstance(stream, WorkloadStream):
                seen.setdefault(stream.vendor)
        for used in self.sut.vendors() if self.sut is not None else []:
            seen.setdefault(used)
        for configured in self.setup.vendors or []:
            seen.setdefault(configured)
        if self.setup.sync is not None:
            seen.setdefault("medplum")  # the pipeline syncs to Medplum
        for layered in self.setup.resilience:
            seen.setdefault(layered)
        if self.setup.failover is not None:
            for system in (self.setup.failover.primary, *self.setup.failover.fallbacks):
                seen.setdefault(system)
        for fault in self.faults:
            seen.setdefault(fault.target)
        for step in self.steps:
            seen.setdefault(step.vendor)
        for expectation in self.expectations:
            mentioned = getattr(expectation, "vendor", None)
            if mentioned:
                seen.setdefault(mentioned)
        return list(seen)
