"""Game-day mode: manual steps (skipped in CI, confirmed or timed out at the console), the live timeline an
operator follows, and real mode's refusal of targets outside loopback, checked before any connection."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.gameday import GameDayConsole, check_run_targets, is_loopback_host
from harness.journal import FaultStarted, OperationEvent, StepDone
from harness.runner import run_scenario
from harness.scenario import load_scenario
from tests.e2e.helpers import REPO, ehrlab

DRILL = """\
name: gameday-drill
description: A short Medplum outage with an operator check in the middle and a token expiry after it.
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 80s
workload:
  - {operation: read_patient, vendor: medplum, rate: 2/s}
faults:
  - {kind: outage, target: medplum, at: 10s, for: 20s, mode: status, status: 503}
steps:
  - {at: 20s, action: manual, vendor: medplum, instruction: "Verify Medplum's status page", timeout: 30s}
  - {at: 40s, action: expire_tokens, vendor: medplum}
lab:  # the test runs it at 20x: 5 s of scenario time is 250 ms of wall, what one stall of a busy 2-core machine
  max_lateness: 5s  # costs (the default 1 s, 50 ms of wall, made the drill INCONCLUSIVE under load)
expectations:
  - {check: breaker_opens, vendor: medplum, within: 15s}
"""


@pytest.fixture
def drill(tmp_path: Path) -> Path:
    path = tmp_path / "gameday-drill.yaml"
    path.write_text(DRILL, encoding="utf-8")
    return path


@pytest.fixture
def silent_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stdin is a pipe nobody writes to (an operator who never answers); closed afterwards."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", stream)
    yield
    os.close(write_fd)  # EOF: the reader thread ends


def test_a_manual_step_outside_a_game_day_is_journaled_skipped_at_once(drill: Path) -> None:
    run = run_scenario(load_scenario(drill), file=drill, mode="virtual", seed=1)
    manual, expire = run.journal.of(StepDone)
    assert (manual.step_id, manual.action, manual.t) == ("s1", "manual", 20.0)
    assert manual.params == {"instruction": "Verify Medplum's status page", "waited_s": 0.0, "confirmed": False,
                             "skipped": True}
    assert (expire.action, expire.t) == ("expire_tokens", 40.0)  # the timeline did not pause
    assert run.verdict == "pass"


@pytest.mark.usefixtures("silent_stdin")
def test_a_manual_step_nobody_confirms_times_out_and_the_run_goes_on(drill: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # gameday on the virtual clock: the 30 s timeout passes in virtual time, so the test takes no wall time
    run = run_scenario(load_scenario(drill), file=drill, mode="virtual", seed=1, gameday=True)
    manual, expire = run.journal.of(StepDone)
    assert manual.params == {"instruction": "Verify Medplum's status page", "waited_s": 30.0, "confirmed": False,
                             "timed_out": True}
    assert manual.t == 50.0
    assert expire.t == 70.0  # the rest of the timeline moved by the pause
    assert run.verdict == "pass"
    err = capsys.readouterr().err
    assert ">>> MANUAL STEP s1 (medplum): Verify Medplum's status page" in err
    assert "timed out after 30.0 s" in err


def test_gameday_is_refused_in_virtual_mode_with_exit_2(drill: Path, tmp_path: Path) -> None:
    result = ehrlab("run", str(drill), "--gameday", report_dir=tmp_path / "reports")
    assert result.code == 2
    assert "--gameday needs --mode real" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("gameday", [[], ["--gameday"]])
def test_a_remote_toxiproxy_url_is_refused_in_real_mode_before_anything_runs(drill: Path, tmp_path: Path,
                                                                            gameday: list[str]) -> None:
    # 10.1.2.3 is never contacted: the refusal happens before the scenario is loaded or the lab built
    result = ehrlab("run", str(drill), "--mode", "real", *gameday, report_dir=tmp_path / "reports",
                    env={"TOXIPROXY_URL": "http://10.1.2.3:8474"}, timeout=30)
    assert result.code == 2, result.stdout + result.stderr
    assert "TOXIPROXY_URL points at 10.1.2.3, outside loopback" in result.stderr
    assert "--allow-remote" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_only_loopback_targets_pass_without_allow_remote() -> None:
    for url in ("http://127.0.0.1:8474", "http://localhost:8474", "http://[::1]:8474", "http://127.8.9.1:1"):
        check_run_targets("real", gameday=True, allow_remote=False, environ={"TOXIPROXY_URL": url})
    for url in ("http://10.1.2.3:8474", "http://toxiproxy.internal:8474", "http://[2001:db8::1]:8474"):
        with pytest.raises(UsageError, match="outside loopback"):
            check_run_targets("real", gameday=False, allow_remote=False, environ={"TOXIPROXY_URL": url})
        check_run_targets("real", gameday=False, allow_remote=True, environ={"TOXIPROXY_URL": url})
        check_run_targets("virtual", gameday=False, allow_remote=False, environ={"TOXIPROXY_URL": url})
    assert is_loopback_host("LOCALHOST.")
    assert not is_loopback_host("example.com")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _console_output(stream: io.StringIO, drill: Path) -> str:
    scenario = load_scenario(drill)

    async def main() -> None:
        console = GameDayConsole(stream, time_scale=20)
        console.scenario_started(scenario, "real", 1)
        console.event(OperationEvent(t=1.0, op_id=1, operation="read_patient", vendor="medplum", started=0.9,
                                     duration_ms=100.0, ok=True, error=None))
        console.event(FaultStarted(t=10.0, fault_id="f1", fault="outage", target="medplum", params={"status": 503}))
        await asyncio.sleep(1.3)  # one refresh tick of the display

    asyncio.run(main())
    return stream.getvalue()


def test_the_progress_line_is_drawn_only_on_a_terminal(drill: Path) -> None:
    terminal = _console_output(_Terminal(), drill)
    assert "\r\x1b[K" in terminal
    assert "gameday-drill: T+0:" in terminal
    assert "/ T+1:20.0" in terminal
    assert "operations 1 ok, 0 failed" in terminal  # redrawn by the tick
    assert terminal.count("| operations ") == 2  # at most once a second: at the start, then at the tick
    plain = _console_output(io.StringIO(), drill)
    assert "\r" not in plain
    assert "\x1b" not in plain
    assert "fault f1 START outage on medplum (status=503)" in plain
    assert "T+0:10.0 |" in plain  # scenario time beside the wall clock


@pytest.mark.real_network
@pytest.mark.slow
def test_a_game_day_prints_each_step_in_order_and_the_operator_confirms_from_stdin(drill: Path,
                                                                                   tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(drill), "--mode", "real", "--gameday", "--time-scale", "20",
         "--report-dir", str(reports)],
        cwd=REPO, env={k: v for k, v in os.environ.items() if k != "TOXIPROXY_URL"}, input="\n",
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    timeline = proc.stderr
    order = ["== gameday-drill (real, seed 1, 80s, 20x faster than the wall)",
             "fault f1 START outage on medplum",
             ">>> MANUAL STEP s1 (medplum): Verify Medplum's status page",
             ">>> s1 confirmed by the operator",
             "step s1 manual@medplum confirmed",
             "fault f1 STOP  outage on medplum",
             "step s2 expire_tokens@medplum done",
             "== gameday-drill: PASS"]
    positions = [timeline.index(line) for line in order]
    assert positions == sorted(positions), timeline
    assert timeline.index("breaker medplum: CLOSED -> OPEN") > positions[1]
    assert "\r" not in timeline  # stderr is a pipe: plain lines, no progress display
    report = (reports / "latest").resolve()
    assert f"incident report: {reports / report.name / 'incident.md'}" in proc.stdout
    assert (report / "incident.md").is_file()
    journal = (report / "journal.jsonl").read_text()
    assert '"action":"manual"' in journal
    assert '"confirmed":true' in journal
