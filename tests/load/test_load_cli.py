"""`ehrlab load` end to end, as CI runs it: a subprocess that starts the simulators and locust in their own
processes (locust is never imported here: it patches gevent on import). Short runs, few users, loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LATENCY = Path(__file__).with_name("medplum-latency.yaml")

pytestmark = [pytest.mark.real_network, pytest.mark.slow]


def ehrlab_load(*args: str, report_dir: Path, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "load", *args, "--report-dir", str(report_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    runs = sorted(report_dir.iterdir()) if report_dir.exists() else []
    return proc, runs[-1] if runs else report_dir


def junit_cases(run: Path) -> dict[str, ET.Element]:
    suite = ET.parse(run / "junit.xml").getroot()
    return {case.attrib["name"]: case for case in suite.iter("testcase")}


def test_short_run_against_healthy_simulators_passes_its_gates(tmp_path: Path) -> None:
    proc, run = ehrlab_load("read", "--users", "4", "--spawn-rate", "4", "--run-time", "6s", "--seed", "5",
                            report_dir=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == "pass"
    assert 0 < summary["stats"]["requests"] < 5000  # bounded: a handful of users for a few seconds
    assert summary["stats"]["failures"] == 0
    cases = junit_cases(run)
    for gate in ("002-8.4-slow-api", "002-8.4-5xx-rate"):
        assert cases[gate].find("failure") is None
    assert (run / "locust_stats.csv").exists()
    assert (run / "locust.html").exists()
    assert not (run / "ready.json").exists()  # the run's credentials are not left in the report
    assert summary["rss"]["samples"] >= 1


def test_latency_fault_fails_the_p95_gate_and_aborts_the_run(tmp_path: Path) -> None:
    proc, run = ehrlab_load("read", "--users", "4", "--spawn-rate", "4", "--run-time", "20s", "--seed", "5",
                            "--fault-scenario", str(LATENCY), "--abort-on-fail", "--abort-after", "2s",
                            "--abort-delay", "1s", report_dir=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert summary["aborted"]["gate"] == "002-8.4-slow-api"
    assert summary["stats"]["duration_s"] < 15  # stopped early, not at --run-time
    cases = junit_cases(run)
    failure = cases["002-8.4-slow-api"].find("failure")
    assert failure is not None
    assert "p95_ms" in failure.attrib["message"]
    assert cases["002-8.4-5xx-rate"].find("failure") is None  # slow is not broken
    faults = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    assert [f["kind"] for f in faults] == ["fault.start", "fault.stop"]


@pytest.mark.parametrize("args", [
    ["nonsense"],
    ["read", "--run-time", "soon"],
    ["read", "--gate", "000-7-circuit-state"],
    ["read", "--fault-scenario", "does/not/exist.yaml"],
])
def test_bad_usage_exits_2_and_runs_nothing(tmp_path: Path, args: list[str]) -> None:
    proc, _ = ehrlab_load(*args, report_dir=tmp_path / "reports", timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error" in proc.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("locustfile", ["clinician_read.py", "observation_write.py", "mixed.py", "service.py"])
def test_every_locustfile_loads_in_locust_with_a_shape(locustfile: str) -> None:
    env = {**os.environ, "EHRLAB_SHAPE": "spike", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", f"loadtests/{locustfile}", "--list"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_the_test_session_never_imports_locust() -> None:
    assert "locust" not in sys.modules
    assert "gevent" not in sys.modules
