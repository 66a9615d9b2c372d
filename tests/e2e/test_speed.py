"""Virtual time makes scenario time cheap: the outage scenario (7 min) in under 2 s of wall time,
an hour of scenario time in under 5 s. The timings here are the issue's acceptance bounds; ratios
against a baseline live in benchmarks/."""

from __future__ import annotations

import time
from pathlib import Path

from harness.runner import run_scenario
from harness.scenario import load_scenario
from tests.e2e.helpers import DATA, REPO


def timed_run(path: Path) -> tuple[float, str, float]:
    scenario = load_scenario(path)
    started = time.perf_counter()
    run = run_scenario(scenario, file=path, mode="virtual", seed=3)
    wall = time.perf_counter() - started
    failing = [f"{c.name}: {c.detail}" for c in run.checks if not c.passed]
    assert not failing, failing
    return wall, run.verdict, scenario.duration


def test_outage_scenario_runs_in_under_2_seconds() -> None:
    wall, verdict, duration = timed_run(REPO / "scenarios" / "medplum-outage.yaml")
    assert duration >= 300
    assert verdict == "pass"
    assert wall < 2.0, f"{duration:g}s of scenario took {wall:.2f}s of wall time"


def test_an_hour_of_scenario_time_runs_in_under_5_seconds() -> None:
    wall, verdict, duration = timed_run(DATA / "hour-long.yaml")
    assert duration == 3600
    assert verdict == "pass"
    assert wall < 5.0, f"{duration:g}s of scenario took {wall:.2f}s of wall time"
