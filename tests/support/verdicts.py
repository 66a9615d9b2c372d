"""What a real-mode test may conclude on a loaded machine: the scenario passed, or the lab said it ran late
(INCONCLUSIVE, with the measured figure in its reason and in the journal's `lab.timing`). A FAIL is a FAIL."""

from __future__ import annotations

from harness.journal import LabTiming
from harness.runner import ScenarioRun


def failing(run: ScenarioRun) -> list[str]:
    return [f"{c.name}: observed {c.observed}, expected {c.threshold}; {c.detail}" for c in run.checks if not c.passed]


def passed_or_lab_late(run: ScenarioRun) -> bool:
    """True for PASS; False for INCONCLUSIVE because the lab ran late, after checking that the lateness is
    reported (the reason names the figure and the tolerance, `lab.timing` says exceeded). Anything else fails
    the test: a FAIL, an abort, or an INCONCLUSIVE for another reason."""
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
