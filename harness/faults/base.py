"""What every fault a scenario names has: when it starts, how long it lasts, whom it targets.

A fault lasts at least `MIN_FAULT_S` (1 ms): `for: 0s` is refused when the file is loaded, since a fault that
stops as it starts cannot be observed (and the runner, which stops the faults due at an instant before it
starts the new ones, would otherwise meet its stop before its start). Leave `for` out to keep a fault until
the scenario's end.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.durations import Duration
from harness.names import VendorName

Scalar = str | int | float | bool | None

#: The shortest fault a scenario may write (the runner's timeline resolves microseconds).
MIN_FAULT_S = 0.001


class FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: Duration = Field(description="when the fault starts, from the scenario start")
    for_: Duration | None = Field(default=None, alias="for", description="how long; until the end if absent")
    target: VendorName
    name: str | None = Field(default=None, pattern=r"^[^\s\x00-\x1f](?:[^\x00-\x1f]*[^\s\x00-\x1f])?$", max_length=80,
                             description="a label for reports and for checks anchored to this fault; defaults "
                                         "to kind@target")
    background: bool = Field(default=False, description=(
        "a condition of the whole test (a steady WAN latency, a lowered quota), not an incident: recovery and "
        "'after the last fault' checks ignore it"))

    @field_validator("for_")
    @classmethod
    def _lasts(cls, value: float | None) -> float | None:
        if value is not None and value < MIN_FAULT_S:
            raise ValueError(f"a fault must last longer than 0s (at least 1ms), got {value:g}s: one that stops as "
                             "it starts cannot be observed; leave `for` out to keep it until the end")
        return value

    def label(self) -> str:
        return self.name or f"{self.kind}@{self.target}"  # type: ignore[attr-defined]

    def params(self) -> dict[str, Scalar]:
        """The kind's own parameters, for the journal (the same in both modes)."""
        raise NotImplementedError
