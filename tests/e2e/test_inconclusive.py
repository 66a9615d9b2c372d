"""INCONCLUSIVE (exit 3): the lab could not judge. A fault it could not inject, a lab it could not build, or (real
mode) its own lateness past the scenario's `lab.max_lateness`: the journal is kept, the reports are written with
the reason and the measured figure, and a failed check is not blamed on the system under test."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from harness import cli
from harness.errors import LabError, ScenarioError
from harness.faults.driver import FaultDriver
from harness.hooks import RunHooks
from harness.journal import Event, FaultStarted, LabInconclusive, LabLag, LabTiming
from harness.lab import Lab
from harness.report.models import EXIT_CODES, PRECEDENCE, run_verdict
from harness.runner import run_scenario
from harness.scenario import load_scenario
from tests.e2e.helpers import DATA, REPO

OUTAGE = "scenarios/medplum-outage.yaml"


async def _refused(self: FaultDriver, *args: object) -> None:
    raise httpx.ConnectError("connection refused")


def test_a_fault_that_cannot_be_injected_is_inconclusive_exit_3_with_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(FaultDriver, "_chaos", _refused)
    assert cli.main(["run", OUTAGE, "--report-dir", str(tmp_path)]) == 3
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert "INCONCLUSIVE" in out.out
    report = (tmp_path / "latest").resolve()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["verdict"] == "inconclusive"
    [scenario] = summary["scenarios"]
    assert scenario["verdict"] == "inconclusive"
    assert scenario["reason"] == "could not start fault f1 (outage@medplum): ConnectError"
    assert scenario["checks"] == []  # the scenario did not happen as written: nothing to judge
    kinds = [json.loads(line)["kind"] for line in (report / "journal.jsonl").read_text().splitlines()]
    assert kinds[0] == "scenario.start"
    assert kinds.index("fault.error") < kinds.index("lab.inconclusive") < kinds.index("scenario.end")
    assert "operation" in kinds  # what ran before the fault was due is kept
    for name in ("report.html", "incident.md", "summary.md", "junit.xml"):
        assert (report / name).is_file(), name
    assert "INCONCLUSIVE" in (report / "summary.md").read_text()


def test_a_lab_that_cannot_be_built_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_simulator(self: Lab, name: str) -> object:
        raise LabError(f"could not serve the {name} simulator on 127.0.0.1: address in use")

    monkeypatch.setattr(Lab, "_start", no_simulator)
    path = REPO / OUTAGE
    run = run_scenario(load_scenario(path), file=path, mode="virtual", seed=1)
    assert run.verdict == "inconclusive"
    assert run.reason == ("the lab could not be built: could not serve the medplum simulator on 127.0.0.1: "
                          "address in use")
    kinds = [e.kind for e in run.journal.events]  # type: ignore[attr-defined]
    assert kinds == ["scenario.start", "lab.inconclusive", "scenario.end"]


class _StallAtFault(RunHooks):
    """Blocks the event loop (the lab, simulators and integration with it) for `seconds` of wall time when the
    first fault starts: what a starved CPU does to a real-mode run."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self.done = False

    def event(self, event: Event) -> None:
        if isinstance(event, FaultStarted) and not self.done:
            self.done = True
            time.sleep(self._seconds)  # real-time: the stall under test


def _with_impossible_check(tmp_path: Path, lab: str) -> Path:
    lines = [line for line in (DATA / "short-outage.yaml").read_text().splitlines(keepends=True)
             if not line.startswith("lab:")]
    text = "".join(lines) + "  - check: breaker_stays_closed\n    vendor: medplum\n" + lab
    path = tmp_path / "late.yaml"
    path.write_text(text)
    return path


@pytest.mark.real_network
def test_a_lab_later_than_its_tolerance_is_inconclusive_even_when_a_check_failed(tmp_path: Path) -> None:
    path = _with_impossible_check(tmp_path, "lab: {max_lateness: 1s}\n")
    hooks = _StallAtFault(0.25)  # 10 s of scenario time at 40x
    run = run_scenario(load_scenario(path), file=path, mode="real", seed=1, time_scale=40, hooks=hooks)
    assert hooks.done
    assert run.verdict == "inconclusive"
    assert "breaker_stays_closed[medplum]" in [c.name for c in run.checks if not c.passed]  # evaluated, reported
    assert run.reason is not None
    assert run.reason.startswith("the lab ran late: the event loop stalled ")
    assert "(tolerance 1 s of scenario time at 40x)" in run.reason
    # the impossible check at least; on a loaded machine the stall can make others fail too, all named
    failed = [c.name for c in run.checks if not c.passed]
    assert f"{len(failed)} check(s) failed while it was late, which may be the lab's doing" in run.reason
    assert "breaker_stays_closed[medplum]" in run.reason
    [timing] = run.journal.of(LabTiming)
    assert timing.exceeded
    assert timing.loop_max_s >= 5  # 0.25 s of wall at 40x, give or take the sampler's tick
    assert f"stalled {timing.loop_max_s:.2f}".rstrip("0").rstrip(".") in run.reason
    assert any(lag.source == "loop" and lag.late_s == timing.loop_max_s for lag in run.journal.of(LabLag))
    [inconclusive] = run.journal.of(LabInconclusive)
    assert inconclusive.reason == run.reason


@pytest.mark.real_network
def test_the_same_stall_within_tolerance_leaves_the_verdict_to_the_checks(tmp_path: Path) -> None:
    path = _with_impossible_check(tmp_path, "lab: {max_lateness: 60s}\n")
    run = run_scenario(load_scenario(path), file=path, mode="real", seed=1, time_scale=40,
                       hooks=_StallAtFault(0.25))
    assert run.verdict == "fail"
    assert run.reason is None
    [timing] = run.journal.of(LabTiming)
    assert not timing.exceeded
    assert timing.loop_max_s > 1


def test_max_lateness_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "zero.yaml"
    path.write_text(_with_impossible_check(tmp_path, "lab: {max_lateness: 0s}\n").read_text())
    with pytest.raises(ScenarioError, match="max_lateness must be positive"):
        load_scenario(path)


@pytest.mark.parametrize(("verdicts", "aborted", "expected"), [
    ([], False, "pass"),
    (["pass", "pass"], False, "pass"),
    (["pass", "inconclusive"], False, "inconclusive"),
    (["inconclusive", "fail"], False, "fail"),  # a judged failure is a failure, whatever else was inconclusive
    (["fail", "pass"], False, "fail"),
    (["fail", "aborted"], False, "aborted"),
    (["pass"], True, "aborted"),  # aborted between scenarios
])
def test_a_run_takes_its_worst_verdict(verdicts: list[str], aborted: bool, expected: str) -> None:
    assert run_verdict(verdicts, aborted=aborted) == expected  # type: ignore[arg-type]


def test_exit_codes_follow_the_verdicts() -> None:
    assert EXIT_CODES == {"pass": 0, "fail": 1, "inconclusive": 3, "aborted": 130}
    assert PRECEDENCE == ("aborted", "fail", "inconclusive", "pass")
