"""`ehrlab report REPORT_DIR`: re-renders every derived file from summary.json + journal.jsonl, byte for byte;
exit 2 with one line for a missing or malformed directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.report.writers import write_run
from tests.e2e.helpers import ehrlab
from tests.harness.report.builders import check, outage_journal, summary_for

CHECKS = [check("breaker_opens[medplum]"), check("latency", passed=False)]
FILES = ("junit.xml", "summary.md", "report.html", "incident.md")


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "reports" / "run1"
    lines = [e.model_dump_json() for e in outage_journal(checks=CHECKS)]
    write_run(directory, summary_for([("outage", CHECKS)]), lines)
    return directory


def test_report_rerenders_every_derived_file_identically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _run_dir(tmp_path)
    before = _snapshot(directory)
    for name in FILES:
        assert name in before
    assert sum(1 for name in before if name.startswith("allure-results/") and name.endswith("-result.json")) == 2
    assert "allure-results/environment.properties" in before
    for name in FILES:
        (directory / name).unlink()
    (directory / "report.html").write_text("stale")
    (directory / "allure-results" / "old-result.json").write_text("{}")
    assert main(["report", str(directory)]) == 0
    assert "re-rendered" in capsys.readouterr().out
    assert _snapshot(directory) == before


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such directory"),
    ("no-journal", "journal.jsonl is missing"),
    ("no-summary", "summary.json is missing"),
    ("bad-summary", "malformed summary"),
    ("bad-journal", "journal.jsonl:3: malformed journal event"),
    ("other-run", "journal.jsonl has scenarios ['outage'], summary.json has ['other']"),
])
def test_report_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str,
                                      message: str) -> None:
    directory = _run_dir(tmp_path)
    if setup == "missing":
        directory = tmp_path / "nowhere"
    elif setup == "no-journal":
        (directory / "journal.jsonl").unlink()
    elif setup == "no-summary":
        (directory / "summary.json").unlink()
    elif setup == "bad-summary":
        (directory / "summary.json").write_text('{"run_id": 3}')
    elif setup == "bad-journal":
        lines = (directory / "journal.jsonl").read_text().splitlines()
        lines[2] = '{"t": 1.0, "kind": "no.such.kind"}'
        (directory / "journal.jsonl").write_text("\n".join(lines) + "\n")
    elif setup == "other-run":
        (directory / "summary.json").write_text(summary_for([("other", CHECKS)]).model_dump_json())
    assert main(["report", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ehrlab: error: ")
    assert message in err


@pytest.mark.slow
def test_ehrlab_run_writes_the_reports_and_report_reproduces_them(tmp_path: Path) -> None:
    result = ehrlab("run", "scenarios/medplum-outage.yaml", "--seed", "3", report_dir=tmp_path)
    assert result.code == 0, result.stderr
    assert result.report is not None
    before = _snapshot(result.report)
    for name in (*FILES, "summary.json", "journal.jsonl", "allure-results/environment.properties"):
        assert name in before
    html = before["report.html"].decode()
    assert 'class="fault-window"' in html
    assert 'class="breaker open"' in html
    assert "**Severity:** P1 - High" in before["incident.md"].decode()
    assert main(["report", str(result.report)]) == 0
    assert _snapshot(result.report) == before
