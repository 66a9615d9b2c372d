"""`ehrlab check`: a recorded journal judged again with new or changed expectations, nothing re-run, the recorded
run untouched; bad input named with file, line and field (exit 2)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Recorded:
    run_dir: Path
    outage: Path  # short-outage.yaml (passes)
    never: Path  # breaker-never-opens.yaml (fails: its breaker_stays_closed cannot hold)

    def journal(self) -> bytes:
        return (self.run_dir / "journal.jsonl").read_bytes()


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One virtual run of two scenarios, recorded once for the module (copies of the files: tests edit them)."""
    root = tmp_path_factory.mktemp("recorded")
    outage, never = root / "short-outage.yaml", root / "breaker-never-opens.yaml"
    shutil.copy(DATA / "short-outage.yaml", outage)
    shutil.copy(DATA / "breaker-never-opens.yaml", never)
    assert main(["run", str(outage), str(never), "--report-dir", str(root / "reports"), "--quiet"]) == 1
    return Recorded((root / "reports" / "latest").resolve(), outage, never)


@pytest.fixture
def recorded(recorded_run: Recorded) -> Iterator[Recorded]:
    """The recorded run; the scenario files are put back as they were after each test."""
    texts = {p: p.read_text(encoding="utf-8") for p in (recorded_run.outage, recorded_run.never)}
    files = sorted(p.name for p in recorded_run.run_dir.iterdir())
    journal = recorded_run.journal()
    yield recorded_run
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    assert recorded_run.journal() == journal, "ehrlab check wrote to the recorded run"
    assert sorted(p.name for p in recorded_run.run_dir.iterdir()) == files


def check(recorded: Recorded, out: Path, *args: str) -> tuple[int, Path]:
    code = main(["check", str(recorded.run_dir), "--report-dir", str(out), *args])
    return code, (out / "latest").resolve()


def summary_of(report: Path) -> dict[str, dict[str, dict[str, object]]]:
    """{scenario: {check name: check}} from a report's summary.json."""
    data = json.loads((report / "summary.json").read_text())
    return {s["name"]: {c["name"]: c for c in s["checks"]} for s in data["scenarios"]}


def test_unchanged_files_give_the_recorded_verdicts_and_journal(recorded: Recorded, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(recorded, tmp_path)
    assert code == 1  # breaker-never-opens fails, as it did
    assert report.name == f"{recorded.run_dir.name}-check"
    assert (report / "journal.jsonl").read_bytes() == recorded.journal()  # same events, same verdict lines
    assert summary_of(report) == summary_of(recorded.run_dir)
    assert json.loads((report / "summary.json").read_text())["verdict"] == "fail"
    for derived in ("junit.xml", "summary.md", "report.html", "incident.md"):
        assert (report / derived).is_file()
    out = capsys.readouterr().out
    assert "breaker-never-opens / breaker_stays_closed[medplum]: observed" in out
    assert "compared with the recorded run" not in out  # nothing changed
    assert main(["check", str(recorded.run_dir), "--report-dir", str(tmp_path)]) == 1
    assert (tmp_path / f"{recorded.run_dir.name}-check-2").is_dir()  # a second check never overwrites the first


def test_a_changed_expectation_in_the_scenario_file_is_judged_on_the_recorded_journal(
        recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = recorded.outage.read_text(encoding="utf-8")
    recorded.outage.write_text(text.replace("    within: 45s", "    within: 1s"), encoding="utf-8")
    code, report = check(recorded, tmp_path)
    assert code == 1
    closes = summary_of(report)["short-outage"]["breaker_closes[medplum]"]
    assert closes["verdict"] == "fail"
    assert summary_of(recorded.run_dir)["short-outage"]["breaker_closes[medplum]"]["verdict"] == "pass"
    out, err = capsys.readouterr()
    assert "short-outage / breaker_closes[medplum]: PASS -> FAIL" in out
    assert "short-outage.yaml changed since the run" in err
    assert f"short-outage / breaker_closes[medplum]: observed {closes['observed']:g} s, expected" in out
    new = (report / "journal.jsonl").read_text().splitlines()
    old = recorded.journal().decode().splitlines()
    assert len(new) == len(old)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert len(changed) == 1
    assert '"kind":"check.passed","check":"breaker_closes[medplum]"' in changed[0][0]
    assert '"kind":"check.failed","check":"breaker_closes[medplum]"' in changed[0][1]


def test_an_expectations_file_for_every_scenario(recorded: Recorded, tmp_path: Path) -> None:
    expectations = tmp_path / "exp.yaml"
    expectations.write_text("expectations:\n  - check: breaker_opens\n    vendor: medplum\n    within: 30s\n",
                            encoding="utf-8")
    code, report = check(recorded, tmp_path / "out", "--expectations", str(expectations))
    judged = summary_of(report)
    assert judged["short-outage"]["breaker_opens[medplum]"]["verdict"] == "pass"
    assert judged["breaker-never-opens"]["breaker_opens[medplum]"]["verdict"] == "pass"
    assert "breaker_stays_closed[medplum]" not in judged["breaker-never-opens"]
    assert code == (0 if all(c["verdict"] == "pass" for s in judged.values() for c in s.values()) else 1)


def test_an_expectations_file_per_scenario_judges_only_those_it_names(
        recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expectations = tmp_path / "exp.yaml"
    expectations.write_text("scenarios:\n  short-outage:\n    expectations:\n      - check: breaker_stays_closed\n"
                            "        vendor: medplum\n", encoding="utf-8")
    code, report = check(recorded, tmp_path / "out", "--expectations", str(expectations))
    assert code == 1  # the outage opens the breaker, which the new expectation forbids
    assert list(summary_of(report)) == ["short-outage"]
    assert summary_of(report)["short-outage"]["breaker_stays_closed[medplum]"]["verdict"] == "fail"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["replay"] == f"ehrlab run {recorded.outage.as_posix()} --mode virtual"
    journal = (report / "journal.jsonl").read_text()
    assert '"scenario":"breaker-never-opens"' not in journal
    assert "not re-judged (no expectations for them in" in capsys.readouterr().err


def test_an_invalid_expectations_file_lists_every_problem(recorded: Recorded, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    expectations = tmp_path / "exp.yaml"
    expectations.write_text(
        "expectations:\n"
        "  - check: breaker_opens\n"
        "    vendor: medplum\n"
        "    colour: red\n"
        "  - check: success_rate\n"
        "    min: 5s\n"
        "  - check: breaker_open\n", encoding="utf-8")
    code, _ = check(recorded, tmp_path / "out", "--expectations", str(expectations))
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"ehrlab: error: {expectations}: 3 errors"
    assert err[1] == f"  {expectations}:4: field 'expectations[0].colour': unknown field"
    assert err[2].startswith(f"  {expectations}:6: field 'expectations[1].min': expected a percentage")
    assert err[3].startswith(f"  {expectations}:7: field 'expectations[2].check': unknown check 'breaker_open'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    ("scenarios:\n  nope:\n    expectations:\n      - {check: breaker_opens, vendor: medplum}\n",
     2, "scenarios.nope", "the report has no scenario 'nope' (it has: short-outage, breaker-never-opens)"),
    ("{}\n", 1, None, "give `expectations:` (for every scenario) or `scenarios:"),
    ("expectations: []\n", 1, "expectations", "at least 1 item"),
    ("expect: []\n", 1, "expect", "unknown field"),
    ("scenarios:\n  short-outage:\n    expectations:\n    - {check: latency, max: 1s}\n    - {check: latency}\n",
     5, "scenarios.short-outage.expectations[1].max", "required field is missing"),
])
def test_bad_expectations_files_name_line_and_field(recorded: Recorded, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str], text: str, line: int,
                                                    field: str | None, message: str) -> None:
    expectations = tmp_path / "exp.yaml"
    expectations.write_text(text, encoding="utf-8")
    assert check(recorded, tmp_path / "out", "--expectations", str(expectations))[0] == 2
    err = capsys.readouterr().err.strip()
    where = f"{expectations}:{line}: " + (f"field '{field}': " if field else "")
    assert err.startswith(f"ehrlab: error: {where}"), err
    assert message in err
    assert "\n" not in err


def test_expectations_are_validated_against_the_scenario_they_judge(recorded: Recorded, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text = recorded.outage.read_text(encoding="utf-8")
    recorded.outage.write_text(text.replace("duration: 2m\n", "duration: 2m\nsetup:\n  vendors: [medplum]\n"),
                               encoding="utf-8")
    expectations = tmp_path / "exp.yaml"
    expectations.write_text("scenarios:\n  short-outage:\n    expectations:\n      - check: breaker_opens\n"
                            "        vendor: epic\n", encoding="utf-8")
    assert check(recorded, tmp_path / "out", "--expectations", str(expectations))[0] == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ehrlab: error: {expectations}:5: field 'scenarios.short-outage.expectations[0].vendor': "
                          "expectations[0] refers to vendor 'epic', which setup.vendors does not configure"), err


def test_an_invalid_scenario_file_is_bad_input_without_expectations(recorded: Recorded, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    recorded.outage.write_text(recorded.outage.read_text(encoding="utf-8").replace("within: 45s", "within: soon"),
                               encoding="utf-8")
    assert check(recorded, tmp_path / "out")[0] == 2
    err = capsys.readouterr().err
    assert f"{recorded.outage}:" in err
    assert "field 'expectations[2].within'" in err
    recorded.outage.unlink()
    try:
        assert check(recorded, tmp_path / "out")[0] == 2
        assert "scenario file no longer exists" in capsys.readouterr().err
    finally:
        shutil.copy(DATA / "short-outage.yaml", recorded.outage)


def test_a_missing_or_malformed_report_dir_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert "not a report directory" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    (tmp_path / "journal.jsonl").write_text("", encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 2
    assert "malformed summary" in capsys.readouterr().err


@pytest.mark.parametrize("recorded_verdict", ["inconclusive", "aborted"])
def test_a_run_the_lab_could_not_judge_keeps_its_verdict(recorded: Recorded, tmp_path: Path,
                                                          recorded_verdict: str) -> None:
    copy = tmp_path / recorded.run_dir.name
    shutil.copytree(recorded.run_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["scenarios"][0].update(verdict=recorded_verdict, reason="event-loop lag 2.4 s > 1 s tolerance")
    summary["verdict"] = recorded_verdict
    (copy / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    expectations = tmp_path / "exp.yaml"
    expectations.write_text("scenarios:\n  short-outage:\n    expectations:\n      - check: breaker_opens\n"
                            "        vendor: medplum\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["check", str(copy), "--report-dir", str(out), "--expectations", str(expectations)]) == 3
    judged = json.loads(((out / "latest").resolve() / "summary.json").read_text())
    assert [s["verdict"] for s in judged["scenarios"]] == [recorded_verdict]  # the checks pass; it stays
    assert judged["scenarios"][0]["reason"] == "event-loop lag 2.4 s > 1 s tolerance"
    assert all(c["verdict"] == "pass" for c in judged["scenarios"][0]["checks"])  # judged all the same
    # with the other scenario, which fails: a known failure outranks INCONCLUSIVE, an interrupted run outranks both
    assert main(["check", str(copy), "--report-dir", str(out)]) == (1 if recorded_verdict == "inconclusive" else 3)
