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
    name: str | None = Field(default=None, description="a label for reports; defaults to kind@target")

    def label(self) -> str:
        return self.name or f"{self.kind}@{self.target}"  # type: ignore[attr-defined]

    def params(self) -> dict[str, Scalar]:
        """The kind's own parameters, for the journal (the same in both modes)."""
        raise NotImplementedError
