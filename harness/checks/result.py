"""The outcome of one check: observed value, threshold, verdict and the runbook it comes from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"
