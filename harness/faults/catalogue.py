"""The fault catalogue: every fault a scenario can name, as typed models.

A scenario names a fault once (`kind: outage`, `target: medplum`, `at: 1m`, `for: 2m`, plus the
kind's own parameters); `harness.faults.driver` decides how to inject it in the current mode. The
faults here are injected by the target simulator's chaos middleware through its admin API, the same
in virtual and real mode. Network faults (toxics) join this union in their own issue.
Defaults follow runbook 000_030ea53f0735abf7.txt §6 (latency 500–2000 ms, error rate 0.3).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.durations import Duration
from harness.names import VendorName

Scalar = str | int | float | bool | None


class _FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: Duration = Field(description="when the fault starts, from the scenario start")
    for_: Duration | None = Field(default=None, alias="for", description="how long; until the end if absent")
    target: VendorName
    name: str | None = Field(default=None, description="a label for reports; defaults to kind@target")

    def label(self) -> str:
        return self.name or f"{self.kind}@{self.target}"  # type: ignore[attr-defined]

    def chaos_endpoint(self) -> str:
        """The simulator admin path (under /admin/chaos/) that injects this fault."""
        raise NotImplementedError

    def chaos_body(self) -> dict[str, Scalar]:
        raise NotImplementedError

    def params(self) -> dict[str, Scalar]:
        """The kind's own parameters, for the journal."""
        return self.chaos_body()


class OutageFault(_FaultBase):
    """Every call to the target fails: an error status (default 503) or a dropped connection."""

    kind: Literal["outage"]
    mode: Literal["status", "drop"] = "status"
    status: int = Field(default=503, ge=500, le=599)

    def chaos_endpoint(self) -> str:
        return "outage"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"mode": self.mode, "status": self.status}


class LatencyFault(_FaultBase):
    """Every call to the target is delayed by a uniform random time in [min, max]."""

    kind: Literal["latency"]
    min: Duration = 0.5
    max: Duration = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> LatencyFault:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}s) must not exceed max ({self.max:g}s)")
        return self

    def chaos_endpoint(self) -> str:
        return "latency"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"min_ms": round(self.min * 1000), "max_ms": round(self.max * 1000)}


class ErrorRateFault(_FaultBase):
    """Each call to the target fails with `status` with probability `probability`."""

    kind: Literal["error_rate"]
    probability: float = Field(default=0.3, ge=0.0, le=1.0)
    status: int = Field(default=500, ge=400, le=599)

    def chaos_endpoint(self) -> str:
        return "error-rate"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"probability": self.probability, "status": self.status}


Fault = Annotated[OutageFault | LatencyFault | ErrorRateFault, Field(discriminator="kind")]
FAULT_KINDS = ("outage", "latency", "error_rate")
