"""What every fault a scenario names has: when it starts, how long it lasts, whom it targets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.durations import Duration
from harness.names import VendorName

Scalar = str | int | float | bool | None


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

    def label(self) -> str:
        return self.name or f"{self.kind}@{self.target}"  # type: ignore[attr-defined]

    def params(self) -> dict[str, Scalar]:
        """The kind's own parameters, for the journal (the same in both modes)."""
        raise NotImplementedError
