"""What every expectation model shares: a report name, a citation, `allow_empty`, and the ratio type."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.checks.anchors import FaultAnchor

Loc = tuple[str | int, ...]


def _parse_ratio(value: object) -> object:
    """`99%` or `99.5 %` -> 0.99 / 0.995; a number is taken as a ratio in [0, 1]. Anything else (`5s`,
    `500ms`, `high`) is a threshold of the wrong unit and says so; NaN and infinity (`.nan`, `"nan%"`) too."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a percentage like 99% or a ratio like 0.99, got {text[:40]!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a percentage like 99% or a ratio like 0.99 (a finite number), got {value!r}")
    return value


Ratio = Annotated[float, BeforeValidator(_parse_ratio), Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class CheckBase(BaseModel):
    """Every check reports what it `matched` (its result's count of events, operations, transitions, jobs
    or samples). One that matched nothing its meaning needs (a breaker that saw no call, a recovery with no
    fault, a latency band with no successful operation) fails with "matched nothing: ..." unless the
    expectation says `allow_empty: true`, an explicit "nothing to judge is fine here"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="report name; defaults to check[vendor]")
    source: str | None = Field(default=None, description="runbook citation; defaults to the scenario's first")
    allow_empty: bool = Field(default=False, description=(
        "pass when the check matched nothing to judge (no fault, no call, no operation in scope); by default "
        "such a check fails with 'matched nothing: ...'"))

    def default_name(self) -> str:
        vendor = getattr(self, "vendor", None)
        check: str = self.check  # type: ignore[attr-defined]
        return f"{check}[{vendor}]" if vendor else check

    def label(self) -> str:
        return self.name or self.default_name()

    def fault_references(self) -> list[tuple[Loc, str]]:
        """Every fault this expectation names (`fault:`, fault anchors in `between` / `after`), with where."""
        found: list[tuple[Loc, str]] = []
        for field in type(self).model_fields:
            value = getattr(self, field)
            if field == "fault" and isinstance(value, str):
                found.append(((field,), value))
            elif isinstance(value, FaultAnchor):
                found.append(((field,), value.fault))
            elif isinstance(value, tuple):
                found.extend(((field, i), item.fault) for i, item in enumerate(value) if isinstance(item, FaultAnchor))
        return found
