"""Scenario times a check can name: a duration from the start (`90s`, `2m`), or a fault's measured start
or end plus an offset, a *fault anchor*.

Written as a string, `"<fault name> <start|end> [+|- <duration>]"`:

    between: ["outage@epic start", "outage@epic end + 30s"]
    after: "maintenance-window end + 2m"

or as a mapping, `{fault: outage@epic, edge: end, plus: 30s}` (`minus:` for an offset before the edge).
The fault is named by its `name:` in the scenario (default `kind@target`). An anchor resolves from the
journal's `fault.start` / `fault.stop` events, so a real-mode run is judged on when the fault really
started and stopped, not when it was planned. A fault that never started (or, for `end`, never stopped
before the run ended) leaves the check unable to judge: it fails with "matched nothing". Names that are
not a fault of the scenario, or that name two of its faults, are refused when the file is loaded.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.durations import Duration, format_duration, parse_duration

FaultName = Annotated[str, Field(min_length=1, max_length=80, description="a fault's `name:` (default kind@target)")]
_ANCHOR = re.compile(r"^\s*(?P<fault>\S(?:.*?\S)?)\s+(?P<edge>start|end)\s*(?:(?P<sign>[+-])\s*(?P<offset>\S.*?))?\s*$")


class FaultAnchor(BaseModel):
    """A fault's measured `edge` (start or end), `plus` or `minus` a duration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: FaultName
    edge: Literal["start", "end"]
    plus: Duration = 0.0
    minus: Duration = 0.0

    @model_validator(mode="after")
    def _one_offset(self) -> FaultAnchor:
        if self.plus and self.minus:
            raise ValueError("give plus or minus, not both")
        return self

    @property
    def offset(self) -> float:
        return self.plus - self.minus

    def describe(self) -> str:
        shift = f" + {format_duration(self.plus)}" if self.plus else (
            f" - {format_duration(self.minus)}" if self.minus else "")
        return f"{self.fault} {self.edge}{shift}"


def _parse_point(value: object) -> object:
    """A number or duration string is a duration (`harness.durations`: finite, at most 7 days); `"<fault> end +
    30s"` becomes a `FaultAnchor`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_duration(value)
    if not isinstance(value, str):
        return value
    try:
        return parse_duration(value)
    except ValueError:
        pass
    match = _ANCHOR.match(value)
    if match is None:
        raise ValueError(f"expected a duration like 90s or a fault anchor like 'outage@epic end + 30s', got {value!r}")
    offset = match.group("offset")
    anchor: dict[str, object] = {"fault": match.group("fault"), "edge": match.group("edge")}
    if offset is not None:
        anchor["minus" if match.group("sign") == "-" else "plus"] = offset
    return anchor


#: A scenario time: seconds from the start, or a `FaultAnchor`.
TimePoint = Annotated[float | FaultAnchor, BeforeValidator(_parse_point)]


def describe_point(point: float | FaultAnchor) -> str:
    return point.describe() if isinstance(point, FaultAnchor) else format_duration(point)
