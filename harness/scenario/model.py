"""The scenario file format, as typed models. Validation only: running is `harness.runner`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.checks.models import Expectation
from harness.durations import Duration, Rate
from harness.faults.catalogue import Fault
from harness.names import OperationName, VendorName


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
    max_in_flight: int = Field(default=200, ge=1)


class Setup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int = Field(default=20, ge=1, le=10_000, description="synthetic patients seeded per vendor")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)
    description: str
    runbook: list[str] = Field(min_length=1, description="citations: file and section")
    duration: Duration
    seed: int | None = None
    drain: Duration = Field(default=30.0, description="how long in-flight operations may finish after the end")
    setup: Setup = Setup()
    workload: list[WorkloadStream] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list)
    expectations: list[Expectation] = Field(min_length=1)

    @model_validator(mode="after")
    def _timeline_fits(self) -> Scenario:
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        for i, fault in enumerate(self.faults):
            if fault.at >= self.duration:
                raise ValueError(f"faults[{i}] starts at {fault.at:g}s, at or after the end ({self.duration:g}s)")
        for i, stream in enumerate(self.workload):
            if stream.stop is not None and stream.stop <= stream.start:
                raise ValueError(f"workload[{i}] stops before it starts")
        return self

    def vendors(self) -> list[str]:
        """Every vendor the scenario touches, in first-mention order."""
        seen: dict[str, None] = {}
        for stream in self.workload:
            seen.setdefault(stream.vendor)
        for fault in self.faults:
            seen.setdefault(fault.target)
        for expectation in self.expectations:
            vendor = getattr(expectation, "vendor", None)
            if vendor:
                seen.setdefault(vendor)
        return list(seen)
