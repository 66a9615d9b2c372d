"""What a run's summary.json holds: typed, so reports and tools read one shape."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.checks.result import CheckResult
from harness.errors import EXIT_ABORTED, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS

#: pass: every check held; fail: a check failed; inconclusive: the lab could not judge (a fault it could not
#: inject, its own lateness past tolerance, a system under test that did not start); aborted: interrupted.
Verdict = Literal["pass", "fail", "inconclusive", "aborted"]

#: A run's verdict is its scenarios' worst, in this order (first wins). A failed check in a scenario the lab
#: could judge is a real failure even when another scenario was inconclusive, so FAIL outranks INCONCLUSIVE:
#: a release gate must not wave through a known failure because the lab was slow elsewhere. ABORTED outranks
#: both: the run did not finish, whatever it had seen.
PRECEDENCE: tuple[Verdict, ...] = ("aborted", "fail", "inconclusive", "pass")

EXIT_CODES: dict[Verdict, int] = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE,
                                  "aborted": EXIT_ABORTED}


def run_verdict(verdicts: Iterable[Verdict], *, aborted: bool = False) -> Verdict:
    """The worst of the scenarios' verdicts by `PRECEDENCE` ("aborted" when `aborted`; "pass" for none)."""
    seen = set(verdicts) | ({"aborted"} if aborted else set())
    return next((v for v in PRECEDENCE if v in seen), "pass")


class ScenarioSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    description: str
    runbook: list[str]
    verdict: Verdict
    reason: str | None = Field(default=None, description="why the verdict is INCONCLUSIVE or ABORTED, in words "
                               "(with the measured figure when the lab ran late)")
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
    started_at: str = Field(description="when the run started: ISO-8601 UTC with milliseconds, real wall time "
                            "(older reports: the run id's stamp, 20261203T181255Z)")
    seed: int
    mode: Literal["virtual", "real"]
    time_scale: float
    verdict: Verdict
    replay: str
    scenarios: list[ScenarioSummary]
    not_run: list[str] = Field(default_factory=list, description="scenario files the run did not get to (it was "
                               "aborted first)")
    replay_identical: bool = Field(default=True, description="whether `ehrlab replay` can reproduce this run byte "
                                   "for byte: only a virtual run can (real sockets and real time cannot)")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def parse_started_at(started_at: str) -> datetime | None:
    """`RunSummary.started_at` as an aware datetime: ISO-8601 (2026-12-03T18:12:55.123Z) or an older report's
    compact stamp (20261203T181255Z); None when it is neither."""
    try:
        moment = datetime.fromisoformat(started_at.replace("Z", "+00:00"))  # 3.11 reads both forms
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
