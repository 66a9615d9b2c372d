"""`ehrlab replay REPORT_DIR`: same files, same seed, same journal, byte for byte; tampering, changed
scenario files and missing reports are caught, each with its exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.report.models import ScenarioSummary
from tests.e2e.helpers import DATA, Result, ehrlab


def _original_run(tmp_path: Path) -> tuple[Path, Path]:
    """A virtual run of a copy of the short outage drill: (the scenario file, the run's report directory)."""
    scenario = tmp_path / "short-outage.yaml"
    shutil.copy(DATA / "short-outage.yaml", scenario)
    result = ehrlab("run", str(scenario), "--seed", "3", report_dir=tmp_path / "reports")
    assert result.code == 0, result.stdout + result.stderr
    assert result.report is not None
    return scenario, result.report


def _replay(report: Path, *args: str) -> Result:
    return ehrlab("replay", str(report), *args, report_dir=report.parent)


def test_replaying_a_virtual_run_gives_the_same_journal_and_exits_with_its_verdict(tmp_path: Path) -> None:
    _, report = _original_run(tmp_path)
    summary = json.loads((report / "summary.json").read_text())
    assert len(summary["scenarios"][0]["sha256"]) == 64  # the file's checksum is recorded at run time
    result = _replay(tmp_path / "reports" / "latest")  # through the `latest` link, which the replay moves on
    assert result.code == 0, result.stdout + result.stderr
    assert "short-outage: MATCH" in result.stdout
    assert result.stdout.rstrip().endswith("MATCH")
    assert result.report is not None
    assert result.report != report  # a new run beside the original
    assert (result.report / "journal.jsonl").read_bytes() == (report / "journal.jsonl").read_bytes()
    assert (report / "journal.jsonl").is_file()


def test_a_tampered_journal_is_a_mismatch_that_names_the_line(tmp_path: Path) -> None:
    _, report = _original_run(tmp_path)
    journal = report / "journal.jsonl"
    lines = journal.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if '"status":200' in line)
    lines[number - 1] = lines[number - 1].replace('"status":200', '"status":201', 1)
    journal.write_text("\n".join(lines) + "\n")
    result = _replay(report)
    assert result.code == 1, result.stdout + result.stderr
    assert f"MISMATCH at journal.jsonl line {number}" in result.stdout
    assert '"status":201' in result.stdout  # the original's line, truncated around the difference
    assert '"status":200' in result.stdout  # the replay's
    assert "\nMATCH\n" not in result.stdout


def test_a_scenario_file_changed_since_the_run_is_refused_with_exit_2_unless_forced(tmp_path: Path) -> None:
    scenario, report = _original_run(tmp_path)
    scenario.write_text(scenario.read_text() + "# edited after the run\n")
    before = sorted(p.name for p in report.parent.iterdir())
    result = _replay(report)
    assert result.code == 2, result.stdout + result.stderr
    assert "scenario file changed since the run" in result.stderr
    assert sorted(p.name for p in report.parent.iterdir()) == before  # nothing was run
    forced = _replay(report, "--force")  # a comment changes nothing the lab does: same journal
    assert forced.code == 0, forced.stdout + forced.stderr
    assert "replaying anyway (--force)" in forced.stderr
    assert "MATCH" in forced.stdout


def test_a_deleted_scenario_file_exits_2(tmp_path: Path) -> None:
    scenario, report = _original_run(tmp_path)
    scenario.unlink()
    result = _replay(report)
    assert result.code == 2
    assert "scenario file no longer exists" in result.stderr


def test_a_missing_or_malformed_report_dir_exits_2(tmp_path: Path) -> None:
    missing = ehrlab("replay", str(tmp_path / "no-such-run"), report_dir=tmp_path)
    assert missing.code == 2
    assert "not a report directory" in missing.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{}")
    (tmp_path / "broken" / "journal.jsonl").write_text("")
    broken = ehrlab("replay", str(tmp_path / "broken"), report_dir=tmp_path)
    assert broken.code == 2
    assert "malformed summary" in broken.stderr


def test_a_real_mode_report_is_rerun_in_virtual_mode_and_not_byte_compared(tmp_path: Path) -> None:
    _, report = _original_run(tmp_path)
    summary_path = report / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["mode"] = "real"  # stands in for a real-mode report: no sockets needed to test what replay says
    summary_path.write_text(json.dumps(summary))
    result = _replay(report)
    assert result.code == 0, result.stdout + result.stderr
    assert "cannot be compared byte for byte" in result.stderr
    assert "re-running it in virtual mode" in result.stderr
    assert "NOT COMPARED" in result.stdout
    assert result.summary()["mode"] == "virtual"


def test_a_report_from_before_checksums_still_loads() -> None:
    old = {"name": "n", "file": "f.yaml", "description": "d", "runbook": [], "verdict": "pass", "duration_s": 1.0,
           "operations": 0, "operations_failed": 0, "checks": []}
    assert ScenarioSummary.model_validate(old).sha256 is None
