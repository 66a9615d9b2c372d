"""What a run's summary.json holds: typed, so reports and tools read one shape."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.checks.result import CheckResult


class ScenarioSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    description: str
    runbook: list[str]
    verdict: Literal["pass", "fail"]
    duration_s: float
    operations: int
    operations_failed: int
    checks: list[CheckResult]


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    started_at: str
    seed: int
    mode: Literal["virtual", "real"]
    time_scale: float
    verdict: Literal["pass", "fail"]
    replay: str
    scenarios: list[ScenarioSummary]
