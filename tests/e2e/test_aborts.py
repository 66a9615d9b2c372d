"""Aborts keep what happened: Ctrl-C (SIGINT) or SIGTERM during `ehrlab run --mode real` stops every active
fault, writes the journal so far, summary.json, report.html and incident.md marked ABORTED, lists the scenarios
not yet run, and exits 130. The run is a real child process, stopped by a real signal once its console shows
the fault started."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import DATA, REPO, default_sigint

SECOND = "scenarios/medplum-outage.yaml"  # never reached: listed as not run


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@pytest.mark.real_network
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_real_run_stops_its_faults_and_writes_an_aborted_report(tmp_path: Path,
                                                                               sig: signal.Signals) -> None:
    # 4x: the fault starts 5 s of wall time in and would last 10 s; the signal comes while it is active
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(DATA / "short-outage.yaml"), SECOND, "--mode", "real",
         "--time-scale", "4", "--report-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    assert child.stderr is not None
    seen: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(child.stderr, seen), daemon=True)
    reader.start()
    console = ""
    try:
        deadline = time.monotonic() + 60  # real-time: waiting for a child process on the wall clock
        while "fault f1 START" not in console:
            assert time.monotonic() < deadline, console
            assert child.poll() is None, console
            try:
                console += seen.get(timeout=1)
            except queue.Empty:
                continue
        child.send_signal(sig)
        child.wait(timeout=60)  # stdout is the short verdict table: it cannot fill the pipe
        assert child.stdout is not None
        stdout = child.stdout.read()
        reader.join(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        reader.join(timeout=10)
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    while not seen.empty():
        console += seen.get()
    assert child.returncode == 130, stdout + console
    assert "Traceback" not in console
    assert f"ABORTED ({sig.name}): faults stopped" in console  # the operator's console says so at once

    report = (tmp_path / "latest").resolve()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["verdict"] == "aborted"
    assert summary["not_run"] == [SECOND]
    [scenario] = summary["scenarios"]
    assert scenario["verdict"] == "aborted"
    assert f"interrupted by {sig.name}" in scenario["reason"]
    assert scenario["checks"] == []  # a scenario cut short is not judged
    kinds = [json.loads(line) for line in (report / "journal.jsonl").read_text().splitlines()]
    order = [e["kind"] for e in kinds]
    assert order[0] == "scenario.start"
    assert order.index("fault.start") < order.index("fault.stop") < order.index("lab.aborted")
    assert order[-1] == "scenario.end"
    [aborted] = [e for e in kinds if e["kind"] == "lab.aborted"]
    assert aborted["signal"] == sig.name
    [stop] = [e for e in kinds if e["kind"] == "fault.stop"]
    assert stop["t"] < 60  # stopped by the abort, before its planned end at 60 s
    assert all("wall" in e for e in kinds)
    assert "ABORTED" in (report / "report.html").read_text()
    assert "ABORTED" in (report / "incident.md").read_text()
    assert "ABORTED" in (report / "summary.md").read_text()
    assert "ABORTED" in stdout
    assert f"not run (aborted first): {SECOND}" in stdout
