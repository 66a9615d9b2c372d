"""What a real-mode test may conclude on a loaded machine: the scenario passed, or the lab said it ran late
(INCONCLUSIVE, with the measured figure in its reason and in the journal's `lab.timing`). A FAIL is a FAIL."""

from __future__ import annotations

import os
from pathlib import Path

from harness.journal import LabTiming
from harness.runner import ScenarioRun

#: When set, each real-mode verdict judged here is appended to this file (scenario, verdict, reason): how often a
#: loaded machine made the lab late, for the figures of a closing note (`EHRLAB_TEST_CPU_HOGS=2`).
LOG = "EHRLAB_TEST_VERDICT_LOG"


def _log(run: ScenarioRun) -> None:
    target = os.environ.get(LOG)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(f"{run.scenario.name}\t{run.verdict}\t{run.reason or ''}\n")


def failing(run: ScenarioRun) -> list[str]:
    return [f"{c.name}: observed {c.observed}, expected {c.threshold}; {c.detail}" for c in run.checks if not c.passed]


def passed_or_lab_late(run: ScenarioRun) -> bool:
    """True for PASS; False for INCONCLUSIVE because the lab ran late, after checking that the lateness is
    reported (the reason names the figure and the tolerance, `lab.timing` says exceeded). Anything else fails
    the test: a FAIL, an abort, or an INCONCLUSIVE for another reason."""
    _log(run)
    if run.verdict == "pass":
        return True
    assert run.verdict == "inconclusive", (run.verdict, run.reason, failing(run))
    assert run.reason is not None
    assert run.reason.startswith("the lab ran late: "), run.reason
    assert " late" in run.reason or "stalled" in run.reason, run.reason
    assert "(tolerance " in run.reason, run.reason
    [timing] = run.journal.of(LabTiming)
    assert timing.exceeded, timing
    assert max(timing.loop_max_s, timing.timeline_max_s) > timing.tolerance_s, timing
    return False
