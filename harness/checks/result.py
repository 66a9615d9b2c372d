"""The outcome of one check: observed value, threshold, verdict, the runbook it comes from, and what it
matched."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool | None


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    check: str
    verdict: Literal["pass", "fail"]
    observed: Scalar
    unit: str
    threshold: str
    source: str
    detail: str
    matched: int | None = Field(default=None, description=(
        "how many things the check judged: events, operations, transitions, jobs or samples, as each "
        "evaluator's docstring says. 0 with a pass only when the expectation says `allow_empty: true`, or for "
        "an `events` check with `max` only, whose pass is that none was found"))

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"
