"""Write a run's output directory: summary.json and journal.jsonl, then everything derived from them
(junit.xml, summary.md, report.html, allure-results/, incident.md), and the `latest` link beside it."""

from __future__ import annotations

import os
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.checks.result import CheckResult
from harness.journal import Event, parse_line
from harness.report.allure import write_allure
from harness.report.derived import scenario_items
from harness.report.html import render_html
from harness.report.incident import render_incident
from harness.report.models import RunSummary, ScenarioSummary
from harness.report.text import observed_text as _observed

DERIVED = ("junit.xml", "summary.md", "report.html", "allure-results", "incident.md")


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def write_junit(summary: RunSummary, path: Path) -> None:
    """One testsuite per scenario, one testcase per check; a failed check is a <failure>.

    Times: a testsuite's `time` is the scenario's wall-clock run time (`ScenarioSummary.wall_s`: building its lab,
    the timeline, the drain and the checks). Every check judges the whole run's journal, so a testcase's `time` is
    its even share of that run (wall_s / checks): the testcases of a suite add up to the suite's time, as GitLab
    and Jenkins total a suite from its testcases. A report without `wall_s` (older runs) writes time="0"."""
    total = sum(len(s.checks) for s in summary.scenarios)
    failures = sum(1 for s in summary.scenarios for c in s.checks if not c.passed)
    run_time = sum(s.wall_s or 0.0 for s in summary.scenarios)
    root = ET.Element("testsuites", name="ehrlab", tests=str(total), failures=str(failures), errors="0",
                      time=_seconds(run_time))
    for scenario in summary.scenarios:
        failed = sum(1 for c in scenario.checks if not c.passed)
        wall = scenario.wall_s or 0.0
        share = wall / len(scenario.checks) if scenario.checks else 0.0
        suite = ET.SubElement(root, "testsuite", name=scenario.name, tests=str(len(scenario.checks)),
                              failures=str(failed), errors="0", skipped="0", time=_seconds(wall))
        props = ET.SubElement(suite, "properties")
        for key, value in (("seed", str(summary.seed)), ("mode", summary.mode), ("replay", summary.replay),
                           ("file", scenario.file), ("runbook", "; ".join(scenario.runbook))):
            ET.SubElement(props, "property", name=key, value=value)
        for check in scenario.checks:
            case = ET.SubElement(suite, "testcase", classname=f"ehrlab.{scenario.name}", name=check.name,
                                 time=_seconds(share))
            text = (f"observed {_observed(check.observed, check.unit)}; expected {check.threshold}; "
                    f"{check.detail}; source: {check.source}")
            if check.passed:
                ET.SubElement(case, "system-out").text = text
            else:
                failure = ET.SubElement(case, "failure", message=f"{check.name}: {text}", type=check.check)
                failure.text = text
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def render_markdown(summary: RunSummary) -> str:
    lines = [
        f"# ehrlab run {summary.run_id}: {summary.verdict.upper()}",
        "",
        f"Mode {summary.mode}, seed {summary.seed}"
        + (f", time scale {summary.time_scale:g}x" if summary.time_scale != 1 else "")
        + f". Replay: `{summary.replay}`"
        + ("" if summary.replay_identical else " (real mode: the same seed and timeline, not a byte-identical "
           "journal: real sockets and real time never give the same bytes twice)"),
        f"Started at {summary.started_at}.",
        "",
    ]
    if summary.verdict == "aborted":
        lines += ["**ABORTED**: the run was interrupted; faults were stopped and the journal so far is kept. "
                  + (f"Not run: {', '.join(f'`{f}`' for f in summary.not_run)}." if summary.not_run
                     else "Every scenario had started."), ""]
    for scenario in summary.scenarios:
        lines += [
            f"## {scenario.name}: {scenario.verdict.upper()}",
            "",
            *([f"**{scenario.verdict.upper()}**: {scenario.reason}", ""] if scenario.reason else []),
            f"{scenario.description.strip()}",
            "",
            f"Runbook: {'; '.join(scenario.runbook)}. {scenario.operations} operations, "
            f"{scenario.operations_failed} failed, over {scenario.duration_s:g} s of scenario time.",
            "",
            "| check | verdict | observed | expected | source |",
            "|---|---|---|---|---|",
        ]
        for c in scenario.checks:
            lines.append(f"| {c.name} | {c.verdict.upper()} | {_observed(c.observed, c.unit)} | {c.threshold} "
                         f"| {c.source} |")
        failing = [c for c in scenario.checks if not c.passed]
        if failing:
            lines += ["", "Failing:"] + [f"- **{c.name}**: {c.detail}" for c in failing]
        lines.append("")
    return "\n".join(lines)


def write_derived(directory: Path, summary: RunSummary, events: Sequence[Event]) -> None:
    """Every file derived from summary.json and the journal's events (the DERIVED names)."""
    items = scenario_items(summary, events)
    write_junit(summary, directory / "junit.xml")
    (directory / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
    (directory / "report.html").write_text(render_html(summary, items), encoding="utf-8")
    write_allure(directory / "allure-results", summary, [item.series for item in items])
    (directory / "incident.md").write_text(render_incident(summary, items), encoding="utf-8")


def write_run(directory: Path, summary: RunSummary, journal_lines: Iterable[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    lines = list(journal_lines)
    with (directory / "journal.jsonl").open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    write_derived(directory, summary, [parse_line(line) for line in lines])
    point_latest(directory)


def point_latest(directory: Path) -> None:
    """Make `<report-dir>/latest` point at `directory` (a relative symlink; a copy where links fail)."""
    latest = directory.parent / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    try:
        os.symlink(directory.name, latest, target_is_directory=True)
    except OSError:
        shutil.copytree(directory, latest)


#: The console's width the verdict table keeps to (a CI log, a terminal beside a Grafana window).
TABLE_WIDTH = 120


def _fit(text: str, room: int) -> str:
    return text if len(text) <= room else text[:max(room - 1, 0)] + "…"


def _failing_line(scenario: str, check: CheckResult) -> list[str]:
    """`  scenario / check: observed X, expected Y (matched N)`, wrapped to TABLE_WIDTH."""
    text = (f"{scenario} / {check.name}: observed {_observed(check.observed, check.unit)}, "
            f"expected {check.threshold}" + (f" (matched {check.matched})" if check.matched is not None else ""))
    if check.observed is None and check.detail:
        text += f": {check.detail}"  # "none" alone does not say why
    return textwrap.wrap(text, TABLE_WIDTH, initial_indent="  ", subsequent_indent="      ",
                         break_long_words=False, break_on_hyphens=False)


def verdict_table(scenarios: Sequence[ScenarioSummary]) -> str:
    """The table the CLI prints: one row per scenario with its failing checks named, then one line per failing
    check with what was observed and what was expected (and a verdict that is neither pass nor fail with its
    reason), all within TABLE_WIDTH columns."""
    rows = [("scenario", "verdict", "checks", "failing")]
    reasons: list[str] = []
    below: list[str] = []
    for s in scenarios:
        failing = [c for c in s.checks if not c.passed]
        rows.append((s.name, s.verdict.upper(), f"{len(s.checks) - len(failing)}/{len(s.checks)}",
                     ", ".join(c.name for c in failing) or "-"))
        if s.reason and s.verdict not in ("pass", "fail"):  # why the lab could not judge, or was interrupted
            reasons += textwrap.wrap(f"{s.name}: {s.verdict.upper()}: {s.reason}", TABLE_WIDTH,
                                     initial_indent="  ", subsequent_indent="      ")
        for check in failing:
            below += _failing_line(s.name, check)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    room = max(TABLE_WIDTH - sum(widths) - 6, 20)  # what the failing column may take
    rows = [(a, b, c, _fit(d, room)) for a, b, c, d in rows]
    widths.append(max(len(r[3]) for r in rows))
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    if reasons:
        out += ["", *reasons]
    if below:
        out += ["", "failing checks:", *below]
    return "\n".join(out)
