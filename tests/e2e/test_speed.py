"""Virtual time makes scenario time cheap. These are guards, not measurements: a run that fell back to
the real clock (or slept on the wall) would take the scenario's full duration, so each bound is a
compression of at least 20x, loose enough for a loaded shared machine (the 7-minute outage takes
about 1.5 s idle here, i.e. ~280x). The measured compression is printed by `benchmarks/run_all.py`."""

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


def test_outage_scenario_runs_at_least_20x_faster_than_real_time() -> None:
    wall, verdict, duration = timed_run(REPO / "scenarios" / "medplum-outage.yaml")
    assert duration >= 300
    assert verdict == "pass"
    assert wall < duration / 20, f"{duration:g}s of scenario took {wall:.2f}s of wall time"


def test_an_hour_of_scenario_time_runs_at_least_100x_faster_than_real_time() -> None:
    wall, verdict, duration = timed_run(DATA / "hour-long.yaml")
    assert duration == 3600
    assert verdict == "pass"
    assert wall < duration / 100, f"{duration:g}s of scenario took {wall:.2f}s of wall time"
