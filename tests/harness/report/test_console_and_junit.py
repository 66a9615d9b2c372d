"""The verdict table the CLI prints (observed value and threshold of each failing check, within 120 columns) and
junit.xml's times (the scenario's wall-clock run as the testsuite's time, shared by its testcases)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.checks.result import CheckResult
from harness.report.models import RunSummary
from harness.report.writers import TABLE_WIDTH, verdict_table, write_junit
from tests.harness.report.builders import check, summary_for


def failing(name: str, observed: float | int | None, unit: str, threshold: str, detail: str = "why",
            matched: int | None = None) -> CheckResult:
    return CheckResult(name=name, check=name.split("[")[0], verdict="fail", observed=observed, unit=unit,
                       threshold=threshold, source="000_x.txt §2 (test)", detail=detail, matched=matched)


def test_a_passing_run_prints_only_the_table() -> None:
    table = verdict_table(summary_for([("outage", [check("breaker_opens[medplum]")])]).scenarios)
    assert table.splitlines() == [
        "scenario  verdict  checks  failing",
        "--------  -------  ------  -------",
        "outage    PASS     1/1     -",
    ]


def test_each_failing_check_shows_observed_threshold_and_matched() -> None:
    checks = [check("breaker_opens[medplum]"),
              failing("success_rate", 0.9512, "ratio", ">= 99%", matched=412),
              failing("breaker_closes[epic]", None, "s", "<= 90s after the last fault", detail="never closed")]
    table = verdict_table(summary_for([("outage", checks), ("calm", [check("latency")])]).scenarios)
    lines = table.splitlines()
    assert lines[2].split() == ["outage", "FAIL", "1/3", "success_rate,", "breaker_closes[epic]"]
    assert lines[3].split() == ["calm", "PASS", "1/1", "-"]
    assert lines[4:] == [
        "",
        "failing checks:",
        "  outage / success_rate: observed 95.12%, expected >= 99% (matched 412)",
        "  outage / breaker_closes[epic]: observed none, expected <= 90s after the last fault: never closed",
    ]


def test_the_table_keeps_to_120_columns() -> None:
    names = [f"events[request,status=50{i},vendor=cerner_prod_with_a_long_breaker_name]" for i in range(5)]
    long_detail = "matched nothing: " + "no breaker called cerner ever transitioned in this run " * 4
    checks = [failing(n, 3, "events", "<= 0 events") for n in names]
    checks.append(failing("breaker_transitions_legal[cerner]", None, "transitions", ">= 1", detail=long_detail))
    table = verdict_table(summary_for([("a-scenario-with-a-rather-long-name", checks)]).scenarios)
    assert max(len(line) for line in table.splitlines()) <= TABLE_WIDTH, table
    assert "…" in table.splitlines()[2]  # the failing column is cut, the lines below name every check in full
    flat = table.replace("\n      ", " ")  # undo the wrapping of long lines
    for name in names:
        assert f"\n  a-scenario-with-a-rather-long-name / {name}: observed 3 events, expected <= 0 events" in flat
    wrapped = table.split("breaker_transitions_legal[cerner]: ")[1]
    assert "\n      " in wrapped  # a long line continues indented under its check


def test_inconclusive_scenarios_say_why_under_the_table() -> None:
    summary = summary_for([("slow", [check("latency"), failing("success_rate", 0.5, "ratio", ">= 99%")])])
    late = summary.scenarios[0].model_copy(update={"verdict": "inconclusive",
                                                   "reason": "event-loop lag 2.4 s > 1 s tolerance"})
    lines = verdict_table([late]).splitlines()
    assert lines[2].split()[:2] == ["slow", "INCONCLUSIVE"]
    assert lines[3:] == ["", "  slow: INCONCLUSIVE: event-loop lag 2.4 s > 1 s tolerance", "", "failing checks:",
                         "  slow / success_rate: observed 50.00%, expected >= 99%"]


def _junit(tmp_path: Path, summary: RunSummary) -> ET.Element:
    write_junit(summary, tmp_path / "junit.xml")
    return ET.parse(tmp_path / "junit.xml").getroot()


def test_junit_times_are_the_scenarios_wall_clock_run(tmp_path: Path) -> None:
    summary = summary_for([("outage", [check("a"), check("b"), failing("c", 1, "s", "<= 0s"), check("d")]),
                           ("calm", [check("e")])])
    walls = (2.5, 0.75)
    timed = summary.model_copy(update={"scenarios": [
        s.model_copy(update={"wall_s": w}) for s, w in zip(summary.scenarios, walls, strict=True)]})
    root = _junit(tmp_path, timed)
    assert root.get("time") == "3.250"
    outage, calm = root.findall("testsuite")
    assert (outage.get("time"), calm.get("time")) == ("2.500", "0.750")
    assert [case.get("time") for case in outage.iter("testcase")] == ["0.625"] * 4  # 2.5 s over four checks
    assert sum(float(case.get("time") or "nan") for case in outage.iter("testcase")) == 2.5
    assert [case.get("time") for case in calm.iter("testcase")] == ["0.750"]


def test_junit_without_a_recorded_run_time_says_zero(tmp_path: Path) -> None:
    root = _junit(tmp_path, summary_for([("outage", [check("a")])]))  # an older report: no wall_s
    assert root.get("time") == "0.000"
    assert [e.get("time") for e in root.iter() if e.tag in ("testsuite", "testcase")] == ["0.000", "0.000"]
