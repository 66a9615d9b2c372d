"""allure-results/: one result file per check, parseable, with the right statuses, labels, steps and UUIDs."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.allure import result_uuid, run_start_ms, write_allure
from harness.report.derived import scenario_items
from tests.harness.report.builders import RUN_ID, check, outage_journal, summary_for

CHECKS = [check("breaker_opens[medplum]"), check("latency", passed=False),
          check("invariant[consent_never_bypassed]", kind="invariant")]


def _write(directory: Path) -> dict[str, dict[str, object]]:
    summary = summary_for([("outage", CHECKS)])
    items = scenario_items(summary, outage_journal(checks=CHECKS))
    write_allure(directory, summary, [item.series for item in items])
    results = {}
    for path in sorted(directory.glob("*-result.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == f"{data['uuid']}-result.json"
        results[data["name"]] = data
    return results


def test_one_result_per_check_with_status_and_details(tmp_path: Path) -> None:
    results = _write(tmp_path / "allure-results")
    assert sorted(results) == ["breaker_opens[medplum]", "invariant[consent_never_bypassed]", "latency"]
    assert results["breaker_opens[medplum]"]["status"] == "passed"
    assert results["latency"]["status"] == "failed"
    details = results["latency"]["statusDetails"]
    assert isinstance(details, dict)
    assert details["message"] == "FAIL: observed 1 s; expected <= 30s"
    assert "000_x.txt §2 (test)" in details["trace"]
    assert results["latency"]["fullName"] == "ehrlab.outage.latency"
    assert results["latency"]["stage"] == "finished"


def test_labels_parameters_and_times(tmp_path: Path) -> None:
    result = _write(tmp_path / "allure-results")["latency"]
    labels = [(label["name"], label["value"]) for label in result["labels"]]  # type: ignore[attr-defined]
    assert ("suite", "outage") in labels
    assert ("tag", "latency") in labels
    assert ("severity", "normal") in labels
    assert result["parameters"] == [{"name": "seed", "value": "7"}, {"name": "mode", "value": "virtual"}]
    start = run_start_ms("20260101T120000Z")
    assert start == 1767268800000
    assert (result["start"], result["stop"]) == (start, start + 120_000)
    consent = _write(tmp_path / "again")["invariant[consent_never_bypassed]"]
    assert {"name": "severity", "value": "critical"} in consent["labels"]  # type: ignore[operator]


def test_steps_are_the_timelines_fault_and_breaker_events(tmp_path: Path) -> None:
    steps = _write(tmp_path / "allure-results")["latency"]["steps"]
    assert isinstance(steps, list)
    start = run_start_ms("20260101T120000Z")
    assert [(s["name"], s["start"] - start, s["stop"] - start, s["status"]) for s in steps] == [
        ("T+0:30.0–T+1:00.0 fault f1 \"outage@medplum\": outage on medplum (status=503)", 30_000, 60_000, "passed"),
        ("T+0:32.0 breaker medplum: CLOSED → OPEN", 32_000, 32_000, "passed"),
        ("T+1:32.0 breaker medplum: OPEN → HALF_OPEN", 92_000, 92_000, "passed"),
        ("T+1:33.0 breaker medplum: HALF_OPEN → CLOSED", 93_000, 93_000, "passed"),
    ]


def test_uuids_are_deterministic_and_files_identical_on_rewrite(tmp_path: Path) -> None:
    first = _write(tmp_path / "a")
    assert first["latency"]["uuid"] == result_uuid(RUN_ID, "outage", "latency")
    _write(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    stale = tmp_path / "a" / "stale-result.json"
    stale.write_text("{}")
    _write(tmp_path / "a")
    assert not stale.exists()


def test_environment_properties(tmp_path: Path) -> None:
    _write(tmp_path / "allure-results")
    text = (tmp_path / "allure-results" / "environment.properties").read_text(encoding="latin-1")
    assert text.splitlines() == [
        f"run_id={RUN_ID}", "mode=virtual", "seed=7", "time_scale=1", "verdict=fail",
        "replay=ehrlab run scenarios/outage.yaml --mode virtual --seed 7", "scenarios=outage",
    ]


def test_checks_that_could_not_be_judged_are_broken_not_failed(tmp_path: Path) -> None:
    lab = check("lab[event_loop_lag]", passed=False, kind="lab")
    summary = summary_for([("outage", [*CHECKS, lab])])
    items = scenario_items(summary, outage_journal(checks=[*CHECKS, lab]))
    write_allure(tmp_path / "judged", summary, [item.series for item in items])
    statuses = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["status"]
                for p in (tmp_path / "judged").glob("*-result.json")}
    assert statuses == {"breaker_opens[medplum]": "passed", "latency": "failed",
                        "invariant[consent_never_bypassed]": "passed", "lab[event_loop_lag]": "broken"}
    cut = summary.model_copy(update={"scenarios": [summary.scenarios[0].model_copy(update={"verdict": "aborted"})]})
    write_allure(tmp_path / "cut", cut, [item.series for item in items])
    statuses = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["status"]
                for p in (tmp_path / "cut").glob("*-result.json")}
    assert statuses["latency"] == "broken"
    assert statuses["breaker_opens[medplum]"] == "passed"
