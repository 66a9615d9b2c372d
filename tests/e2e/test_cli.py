"""The `ehrlab run` contract: exit codes, reports, failing checks named, bad input rejected cleanly."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from tests.e2e.helpers import DATA, REPO, ehrlab

OUTAGE = "scenarios/medplum-outage.yaml"
WALL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_outage_scenario_passes_and_writes_every_report(tmp_path: Path) -> None:
    result = ehrlab("run", OUTAGE, "--seed", "7", report_dir=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert result.report is not None
    assert (tmp_path / "latest").is_symlink()
    summary = result.summary()
    assert (summary["seed"], summary["mode"], summary["verdict"]) == (7, "virtual", "pass")
    assert summary["replay"] == f"ehrlab run {OUTAGE} --mode virtual --seed 7"
    [scenario] = summary["scenarios"]
    assert scenario["verdict"] == "pass"
    names = {c["name"] for c in scenario["checks"]}
    assert {"breaker_opens[medplum]", "breaker_half_opens[medplum]", "breaker_closes[medplum]",
            "recovery_time[medplum]", "success_rate", "latency"} <= names
    for check in scenario["checks"]:
        assert check["verdict"] == "pass"
        assert check["source"].startswith(("000_", "002_"))
        assert check["threshold"]
    junit = ET.parse(result.report / "junit.xml").getroot()
    assert junit.get("tests") == str(len(scenario["checks"]))
    assert junit.get("failures") == "0"
    assert (result.report / "journal.jsonl").stat().st_size > 0
    assert "medplum-outage: PASS" in (result.report / "summary.md").read_text()
    assert "medplum-outage" in result.stdout
    assert "PASS" in result.stdout


def test_a_check_that_cannot_hold_fails_the_run(tmp_path: Path) -> None:
    result = ehrlab("run", str(DATA / "breaker-never-opens.yaml"), report_dir=tmp_path)
    assert result.code == 1, result.stdout + result.stderr
    summary = result.summary()
    assert summary["verdict"] == "fail"
    checks = {c["name"]: c for c in summary["scenarios"][0]["checks"]}
    failing = checks["breaker_stays_closed[medplum]"]
    assert failing["verdict"] == "fail"
    assert failing["observed"] >= 1
    assert checks["success_rate"]["verdict"] == "pass"  # only the impossible claim fails
    assert result.report is not None
    junit = ET.parse(result.report / "junit.xml").getroot()
    failures = [case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None]
    assert failures == ["breaker_stays_closed[medplum]"]
    assert "breaker_stays_closed[medplum]" in result.stdout


BAD_INPUTS = {
    "malformed": ("workload: [oops\n", None, "invalid YAML"),
    "unknown-field": ("    rate: 2/s\n", "    rate: 2/s\n    burst: 3\n", "field 'workload[0].burst'"),
    "wrong-type": ("duration: 7m\n", "duration: seven minutes\n", "field 'duration'"),
    "negative": ("duration: 7m\n", "duration: -7m\n", "field 'duration'"),
    "unknown-vendor": ("target: medplum\n", "target: meditech\n", "field 'faults[0].target'"),
    "unknown-fault": ("kind: outage\n", "kind: asteroid\n", "field 'faults[0].kind'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_scenario_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    original = (REPO / OUTAGE).read_text()
    old, new, expected = BAD_INPUTS[case]
    if case == "malformed":
        text = original.replace("workload:\n", "workload: [oops\n", 1)
    else:
        assert new is not None
        assert old in original
        text = original.replace(old, new, 1)
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    result = ehrlab("run", str(bad), report_dir=tmp_path / "reports")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ehrlab: error: {bad}:")
    line_no = lines[0].split(f"{bad}:")[1].split(":")[0]
    assert line_no.isdigit(), lines[0]  # the line where YAML gives one
    assert expected in lines[0]
    assert not (tmp_path / "reports").exists()  # nothing ran


def test_an_invalid_file_stops_the_whole_run_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = ehrlab("run", OUTAGE, str(bad), report_dir=tmp_path / "reports")
    assert result.code == 2
    assert "field 'description'" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("args", [
    [], ["run"], ["run", "nope.yaml"], ["run", OUTAGE, "--mode", "warp"], ["run", OUTAGE, "--seed", "x"],
    ["run", OUTAGE, "--time-scale", "0"], ["fly"],
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = ehrlab(*args, report_dir=tmp_path)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert "error" in result.stderr


@pytest.mark.real_network
def test_real_mode_prints_the_timeline_an_operator_follows(tmp_path: Path) -> None:
    """PASS (exit 0), or INCONCLUSIVE (exit 3) when the lab ran later than the file's `lab.max_lateness` (a busy
    machine at 40x): then the figure is printed and the timeline may stop short, but it is never a FAIL."""
    result = ehrlab("run", str(DATA / "short-outage.yaml"), "--mode", "real", "--time-scale", "40",
                    report_dir=tmp_path)
    assert result.code in (0, 3), result.stdout + result.stderr
    summary = result.summary()
    assert (summary["mode"], summary["time_scale"]) == ("real", 40.0)
    assert summary["replay"].endswith("--mode real --time-scale 40")
    assert summary["replay_identical"] is False
    assert "not a byte-identical journal" in result.stdout
    assert WALL.match(summary["started_at"]), summary["started_at"]
    timeline = result.stderr
    assert "== short-outage (real, seed 1, 120s, 40x faster than the wall) started at" in timeline
    order = ["fault f1 START outage on medplum", "breaker medplum: CLOSED -> OPEN", "fault f1 STOP",
             "breaker medplum: OPEN -> HALF_OPEN", "breaker medplum: HALF_OPEN -> CLOSED"]
    [scenario] = summary["scenarios"]
    if result.code == 3:
        assert (summary["verdict"], scenario["verdict"]) == ("inconclusive", "inconclusive")
        assert scenario["reason"].startswith("the lab ran late: "), scenario["reason"]
        assert "(tolerance 2 s of scenario time at 40x)" in scenario["reason"]
        assert "INCONCLUSIVE" in result.stdout
        order = order[:1]
    else:
        assert summary["verdict"] == "pass"
    positions = [timeline.index(line) for line in order]
    assert positions == sorted(positions), timeline
    journal = (tmp_path / "latest" / "journal.jsonl").read_text().splitlines()
    errors = [e for e in journal if '"error":"ConnectionFailed"' in e]
    assert errors, "a dropped connection must reach the integration as a transport failure"
    assert sum('"kind":"lab.timing"' in e for e in journal) == 1


# --- faster authoring (issue 13): validate lists every problem, check re-judges, events documents ------------

def test_validate_lists_every_problem_of_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (REPO / OUTAGE).read_text()
    bad = tmp_path / "three-mistakes.yaml"
    bad.write_text(original.replace("target: medplum\n", "target: meditech\n", 1)
                   .replace("    rate: ", "    burst: 3\n    rate: ", 1)
                   .replace("within: 30s", "within: soon", 1))
    assert main(["validate", str(bad), str(REPO / OUTAGE)]) == 2
    out, err = capsys.readouterr()
    assert f"ok  {(REPO / OUTAGE).as_posix()}" in out
    lines = err.strip().splitlines()
    assert len(lines) == 4, err
    assert [line.split(": field ")[1].split("'")[1] for line in lines[:3]] == [
        "workload[0].burst", "faults[0].target", "expectations[0].within"]
    for line in lines[:3]:
        assert line.startswith(f"ehrlab: error: {bad}:")
        assert line.split(f"{bad}:")[1].split(":")[0].isdigit()
    assert lines[3] == "ehrlab: 1 of 2 scenario file(s) invalid (3 errors)"


def _readme_block(heading: str, language: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"### {heading}\n")[1].split("\n## ")[0].split("\n### ")[0]
    return section.split(f"```{language}\n")[1].split("```")[0]


def test_check_rejudges_a_run_with_the_readme_expectations(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(REPO / OUTAGE), "--report-dir", str(tmp_path / "reports"), "--quiet"]) == 0
    run_dir = (tmp_path / "reports" / "latest").resolve()
    wall_s = json.loads((run_dir / "summary.json").read_text())["scenarios"][0]["wall_s"]
    assert wall_s > 0  # the run's wall-clock time, junit.xml's testsuite time shared by its testcases
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("time") == f"{wall_s:.3f}"
    cases = [float(case.get("time") or "nan") for case in suite.iter("testcase")]
    assert sum(cases) == pytest.approx(wall_s, abs=0.001 * len(cases))
    expectations = tmp_path / "expectations.yaml"
    expectations.write_text(_readme_block("Re-judging a run", "yaml"), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(run_dir), "--expectations", str(expectations)]) == 0
    out = capsys.readouterr().out
    assert "medplum-outage  PASS" in out
    report = (tmp_path / "reports" / "latest").resolve()
    assert report.name == f"{run_dir.name}-check"
    checks = {c["name"] for c in json.loads((report / "summary.json").read_text())["scenarios"][0]["checks"]}
    assert {"recovery_time[medplum]", "breaker_closes[medplum]"} <= checks  # the scenario's own entry wins
    assert "breaker_opens[medplum]" not in checks
    tighter = expectations.read_text().replace("max: 45s", "max: 5s")
    expectations.write_text(tighter, encoding="utf-8")
    assert main(["check", str(run_dir), "--expectations", str(expectations)]) == 1
    assert "medplum-outage / recovery_time[medplum]: observed 10 s, expected <= 5s" in capsys.readouterr().out


def test_events_prints_the_reference_page_and_one_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events"]) == 0
    assert capsys.readouterr().out == (REPO / "docs" / "events.md").read_text(encoding="utf-8")
    assert main(["events", "breaker.transition"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### `breaker.transition`")
    for field in ("breaker", "from_state", "to_state"):
        assert f"| `{field}` |" in out
