"""What a run's summary.json holds: typed, so reports and tools read one shape."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    sha256: str | None = Field(default=None, description="the scenario file's SHA-256 when it was run (older "
                               "reports have none); `ehrlab replay` refuses a file that changed since")
    seed: int | None = Field(default=None, description="this scenario's seed (scenarios of one run may differ: "
                             "--seed, else the file's seed:, else 1); older reports have none")
    wall_s: float | None = Field(default=None, description="wall-clock seconds the scenario took to run, from "
                                 "building its lab to its verdict (JUnit's testsuite time); older reports have none")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a scenario file's bytes, as summary.json records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
