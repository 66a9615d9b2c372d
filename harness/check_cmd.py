"""`ehrlab check REPORT_DIR [--expectations FILE] [--report-dir DIR]`: judge a recorded run's journal again, with
new or changed expectations, without running anything.

The journal is the run's source of truth, so a check written after the run can be tried on it at once: each
scenario's section of `journal.jsonl` (from its `scenario.start` up to its recorded `check.*` verdicts: what the
runner's checks saw) is evaluated by the same `harness.checks.evaluate_all` the runner calls.

Expectations come from:
- `--expectations FILE`, a YAML file in the scenario format's `expectations:` shape, either for every scenario
  of the report, or per scenario by name (scenarios it does not name are left out of the new report):

      expectations:                  # every scenario of the report (unless named below)
        - check: breaker_opens
          vendor: epic
      scenarios:                     # or per scenario, by its name
        epic-outage:
          expectations:
            - {check: recovery_time, vendor: epic, max: 45s}

  Each expectation is validated on its own and, when the scenario's file is still there and valid, as part of
  that scenario (checks that depend on its setup, vendors or faults), every problem named with the
  expectations file's line and field;
- else each scenario file named in summary.json, as it is now (edit its `expectations:` and check again).

A new report directory is written beside REPORT_DIR (or under `--report-dir DIR`), named after the run with
`-check` (`-check-2`, ... when taken) and pointed at by `latest`: summary.json with the new checks and verdicts,
journal.jsonl (the recorded events, with the `check.*` lines replaced by the new verdicts), and every derived
report. The recorded run is never written to.

Exit codes: 0 every check passed; 1 a check failed; 2 bad input (a missing or malformed report directory, an
invalid or missing expectations or scenario file, with file, line and field); 3 a recorded run the lab could not
judge (INCONCLUSIVE, or ABORTED: an interrupted run's journal is re-judged but its verdict stays).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.checks import CheckResult, evaluate_all
from harness.checks.models import Expectation
from harness.errors import EXIT_INCONCLUSIVE, ScenarioError, ScenarioErrors, UsageError
from harness.journal import CheckFailed, CheckPassed, Event, ScenarioEnded, ScenarioStarted, parse_line
from harness.replay_cmd import split_sections
from harness.report.models import EXIT_CODES, RunSummary, ScenarioSummary, Verdict, file_sha256, run_verdict
from harness.report.writers import verdict_table, write_run
from harness.report_cmd import load_run
from harness.scenario.issues import located
from harness.scenario.loader import Loc, Source, YamlDoc, load_scenario, one_or_all, read_yaml, validate
from harness.scenario.loader import validation_errors as located_problems
from harness.scenario.model import Scenario


class ScenarioExpectations(BaseModel):
    """`scenarios.NAME`: the expectations for one scenario of the report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expectations: list[Expectation] = Field(min_length=1)


class ExpectationsFile(BaseModel):
    """An `ehrlab check --expectations` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expectations: Annotated[list[Expectation], Field(min_length=1)] | None = Field(
        default=None, description="for every scenario of the report that `scenarios` does not name")
    scenarios: dict[str, ScenarioExpectations] = Field(
        default_factory=dict, description="per scenario, by its name in the report")

    @model_validator(mode="after")
    def _something(self) -> ExpectationsFile:
        if self.expectations is None and not self.scenarios:
            raise located((), "give `expectations:` (for every scenario) or `scenarios: {NAME: {expectations: "
                              "[...]}}`")
        return self


@dataclass(frozen=True, slots=True)
class Section:
    """One scenario's part of the recorded journal: its raw lines and their events."""

    lines: list[str]
    events: list[Event]

    def judged(self) -> list[Event]:
        """What the runner's checks saw: every event before the recorded verdicts (a run stopped before its checks
        has none: then all of them)."""
        first = next((i for i, e in enumerate(self.events) if isinstance(e, CheckPassed | CheckFailed)), None)
        return self.events if first is None else self.events[:first]


def _note(text: str) -> None:
    print(f"ehrlab check: {text}", file=sys.stderr, flush=True)


def _sections(directory: Path, summary: RunSummary) -> list[Section]:
    path = directory / "journal.jsonl"
    raw = split_sections(path.read_bytes())
    if len(raw) != len(summary.scenarios):
        raise UsageError(f"{path}: malformed journal ({len(raw)} scenario(s) in it, {len(summary.scenarios)} in "
                         "summary.json)")
    sections = []
    for scenario, section in zip(summary.scenarios, raw, strict=True):
        lines = [line.decode("utf-8") for line in section.lines if line.strip()]
        events = [parse_line(line) for line in lines]  # load_run has already checked every line parses
        first = events[0] if events else None
        if not isinstance(first, ScenarioStarted) or first.scenario != scenario.name:
            raise UsageError(f"{path}:{section.first_line}: malformed journal (expected scenario.start of "
                             f"{scenario.name})")
        sections.append(Section(lines, events))
    return sections


def _in_context(scenario: ScenarioSummary, doc: YamlDoc, prefix: Loc,
                problems: list[ScenarioError]) -> list[Any] | None:
    """The expectations at `prefix` of the expectations file validated as part of the scenario's file (its
    setup, vendors, faults), or None when that file is gone or invalid on its own (problems: the file's)."""
    try:
        scenario_doc = read_yaml(Path(scenario.file))
    except ScenarioError:
        _note(f"{scenario.file}: cannot read the scenario file; {scenario.name}'s expectations are checked on their "
              "own, not against its setup")
        return None
    raw: Any = doc.data
    for part in prefix:
        raw = raw[part]
    data = {**scenario_doc.data, "expectations": raw}
    sources: dict[Loc, Source] = {(): Source(scenario_doc.file, scenario_doc.lines),
                                  ("expectations",): Source(doc.file, doc.lines, prefix)}
    try:
        return list(Scenario.model_validate(data).expectations)
    except ValidationError as exc:
        found = located_problems(data, exc, sources)
    mine = [p for p in found if p.file == doc.file]
    if mine:
        problems.extend(mine)
    else:
        _note(f"{scenario.file}: the scenario file is no longer valid ({found[0].one_line()}); {scenario.name}'s "
              "expectations are checked on their own")
    return None


def _from_file(file: Path, summary: RunSummary) -> dict[str, list[Any]]:
    """Each named (or every) scenario's expectations from an expectations file; every problem raised at once."""
    doc = read_yaml(file, "an expectations file (expectations: [...] or scenarios: {NAME: {expectations: [...]}})")
    parsed: ExpectationsFile = validate(ExpectationsFile, doc.data, {(): Source(doc.file, doc.lines)}, doc.problems)
    names = [s.name for s in summary.scenarios]
    problems = [ScenarioError(doc.file, f"the report has no scenario {name!r} (it has: {', '.join(names)})",
                              line=doc.lines.get(("scenarios", name)), field=f"scenarios.{name}")
                for name in parsed.scenarios if name not in names]
    chosen: dict[str, list[Any]] = {}
    for scenario in summary.scenarios:
        if scenario.name in parsed.scenarios:
            prefix: Loc = ("scenarios", scenario.name, "expectations")
            expectations: list[Any] = list(parsed.scenarios[scenario.name].expectations)
        elif parsed.expectations is not None:
            prefix, expectations = ("expectations",), list(parsed.expectations)
        else:
            continue
        chosen[scenario.name] = _in_context(scenario, doc, prefix, problems) or expectations
    if problems:
        raise one_or_all(sorted(problems, key=lambda p: p.line or 0))
    return chosen


def _from_scenarios(summary: RunSummary) -> dict[str, list[Any]]:
    """Each scenario file's expectations as the file is now; every problem of every file raised at once."""
    chosen: dict[str, list[Any]] = {}
    problems: list[ScenarioError] = []
    for scenario in summary.scenarios:
        path = Path(scenario.file)
        if not path.is_file():
            raise UsageError(f"{scenario.file}: scenario file no longer exists (relative paths are resolved from the "
                             "current directory, as at the run); give --expectations FILE instead")
        if scenario.sha256 is not None and file_sha256(path) != scenario.sha256:
            _note(f"{scenario.file} changed since the run: its expectations are read as they are now; the journal "
                  "is still the recorded run's (workload, faults and steps as they were then)")
        try:
            chosen[scenario.name] = list(load_scenario(path).expectations)
        except ScenarioError as exc:
            problems.extend(exc.errors if isinstance(exc, ScenarioErrors) else [exc])
    if problems:
        raise one_or_all(problems)
    return chosen


def _check_line(check: CheckResult, t: float, template: Event | None) -> str:
    cls = CheckPassed if check.passed else CheckFailed
    stamp: dict[str, Any] = {"t": t}
    wall = getattr(template, "wall", None)  # real mode: the recorded verdicts' wall time
    if wall is not None:
        stamp["wall"] = wall
    event = cls.model_validate({**stamp, "check": check.name, "observed": check.observed,
                                "threshold": check.threshold})
    return event.model_dump_json(exclude={"wall"} if wall is None else None)


def _rejudge(scenario: ScenarioSummary, section: Section, expectations: Sequence[Any]
             ) -> tuple[ScenarioSummary, list[str]]:
    """The scenario's new summary entry and journal lines: the recorded lines, the check lines replaced."""
    checks = evaluate_all(expectations, section.judged(), scenario.runbook[0] if scenario.runbook else "")
    recorded = [i for i, e in enumerate(section.events) if isinstance(e, CheckPassed | CheckFailed)]
    ends = [i for i, e in enumerate(section.events) if isinstance(e, ScenarioEnded)]
    at = recorded[0] if recorded else (ends[-1] + 1 if ends else len(section.events))
    template = section.events[at] if recorded else None
    t_end = template.t if template is not None else section.events[at - 1].t
    kept = [i for i in range(len(section.lines)) if i not in set(recorded)]
    lines = ([section.lines[i] for i in kept if i < at] + [_check_line(c, t_end, template) for c in checks]
             + [section.lines[i] for i in kept if i >= at])
    verdict: Verdict = scenario.verdict if scenario.verdict in ("inconclusive", "aborted") else (
        "pass" if all(c.passed for c in checks) else "fail")
    return scenario.model_copy(update={"checks": checks, "verdict": verdict}), lines


def _out_dir(directory: Path, summary: RunSummary, out: Path | None) -> Path:
    parent = out if out is not None else directory.resolve().parent
    base = re.sub(r"-check(-\d+)?$", "", summary.run_id) + "-check"  # checking a check's report: not -check-check
    candidate, n = parent / base, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{base}-{n}"
    return candidate


def _replay(summary: RunSummary, kept: Sequence[ScenarioSummary]) -> str:
    """The recorded replay command, for the scenarios kept (the new report's replay reproduces its journal)."""
    dropped = {s.file for s in summary.scenarios} - {s.file for s in kept}
    if not dropped:
        return summary.replay
    try:
        tokens = shlex.split(summary.replay)
    except ValueError:
        return summary.replay
    return shlex.join([t for t in tokens if t not in dropped])


def _changes(before: ScenarioSummary, after: ScenarioSummary) -> list[str]:
    old = {c.name: c for c in before.checks}
    lines = []
    for check in after.checks:
        was = old.get(check.name)
        if was is None:
            lines.append(f"  {after.name} / {check.name}: {check.verdict.upper()} (new)")
        elif was.verdict != check.verdict:
            lines.append(f"  {after.name} / {check.name}: {was.verdict.upper()} -> {check.verdict.upper()}")
    gone = [name for name in old if name not in {c.name for c in after.checks}]
    lines += [f"  {after.name} / {name}: no longer checked" for name in gone]
    return lines


def run(directory: Path, *, expectations: Path | None = None, out_dir: Path | None = None) -> int:
    summary, _ = load_run(directory)  # exit 2 for a missing or malformed directory
    sections = _sections(directory, summary)
    chosen = _from_file(expectations, summary) if expectations is not None else _from_scenarios(summary)
    left_out = [s.name for s in summary.scenarios if s.name not in chosen]
    if left_out:
        _note(f"not re-judged (no expectations for them in {expectations}): {', '.join(left_out)}")
    scenarios: list[ScenarioSummary] = []
    lines: list[str] = []
    changes: list[str] = []
    for scenario, section in zip(summary.scenarios, sections, strict=True):
        if scenario.name not in chosen:
            continue
        judged, scenario_lines = _rejudge(scenario, section, chosen[scenario.name])
        scenarios.append(judged)
        lines += scenario_lines
        changes += _changes(scenario, judged)
    verdict = run_verdict(s.verdict for s in scenarios)
    target = _out_dir(directory, summary, out_dir)
    new = summary.model_copy(update={"run_id": target.name, "verdict": verdict, "scenarios": scenarios,
                                     "replay": _replay(summary, scenarios)})
    write_run(target, new, lines)
    print(verdict_table(scenarios))
    if changes:
        print("\ncompared with the recorded run:", *changes, sep="\n")
    source = expectations if expectations is not None else "the scenario files"
    print(f"\n{verdict.upper()}: {summary.run_id} re-judged with {source}; report in {target} "
          f"(also {target.parent / 'latest'})")
    # an interrupted run's journal can be re-judged, but the lab could not judge that run: 3, not 130 (no
    # interrupt happened now)
    return EXIT_INCONCLUSIVE if verdict == "aborted" else EXIT_CODES[verdict]


def add_parser(commands: Any) -> None:
    """`ehrlab check`'s arguments (`commands`: the CLI's subparsers)."""
    check = commands.add_parser("check", help="re-judge a recorded run's journal with new or changed expectations "
                                "(nothing is run)")
    check.add_argument("report_dir", type=Path, metavar="REPORT_DIR", help="a run's directory, e.g. reports/latest")
    check.add_argument("--expectations", type=Path, default=None, metavar="FILE",
                       help="a YAML file: `expectations: [...]` for every scenario, or `scenarios: {NAME: "
                            "{expectations: [...]}}` (default: each scenario file's expectations as it is now)")
    check.add_argument("--report-dir", dest="out_dir", type=Path, default=None, metavar="DIR",
                       help="where the re-judged report is written (default: REPORT_DIR's parent)")


def command(args: argparse.Namespace) -> int:
    return run(args.report_dir, expectations=args.expectations, out_dir=args.out_dir)
