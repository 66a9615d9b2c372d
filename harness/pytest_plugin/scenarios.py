"""Run a scenario file from a test: resolve its path, run it, write its report, show its timeline in Allure,
and say why it failed in words a reviewer can act on (the failing checks, their runbook sources, the replay).
"""

from __future__ import annotations

import re
import shlex
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from harness.clock import RealClock
from harness.journal import Event, StepDone, StepFailed, parse_line, wall_stamp
from harness.lab import Mode
from harness.pytest_plugin import DEFAULT_SEED
from harness.report.models import RunSummary
from harness.report.text import observed_text
from harness.report.timeline import moments, scenario_clock
from harness.report.writers import render_markdown, write_derived
from harness.runner import ScenarioRun, run_scenario, summarize
from harness.scenario import load_scenario


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One scenario run asked for by a test (a marker or `ehrlab_run_scenario`)."""

    path: Path
    mode: Mode
    seed: int | None  # None: the file's seed, else DEFAULT_SEED
    time_scale: float
    nodeid: str  # the test's node id, for the replay command and the report's name
    allow_remote: bool = False  # --ehrlab-allow-remote: a TOXIPROXY_URL outside loopback may be driven


def resolve(path: str | Path, *, rootdir: Path, test_dir: Path | None) -> Path:
    """An absolute path as is; a relative one under the rootdir, else beside the test file, else as given."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in (rootdir, test_dir):
        if base is not None and (base / candidate).is_file():
            return base / candidate
    return candidate


@dataclass(frozen=True, slots=True)
class Outcome:
    run: ScenarioRun
    request: RunRequest
    report: Path | None  # the run's report directory, when the session writes reports

    def failure_message(self) -> str:
        return failure_message(self.run, self.request, self.report)


def execute(request: RunRequest, report_dir: Path | None) -> Outcome:
    """Run the scenario, write its report under `report_dir` (if any), show its timeline in Allure."""
    scenario_run = run(request)
    report = write_report(scenario_run, request, report_dir) if report_dir is not None else None
    report_to_allure(scenario_run, request)
    return Outcome(scenario_run, request, report)


def run(request: RunRequest) -> ScenarioRun:
    scenario = load_scenario(request.path)
    seed = request.seed if request.seed is not None else (
        scenario.seed if scenario.seed is not None else DEFAULT_SEED)
    return run_scenario(scenario, file=request.path, mode=request.mode, seed=seed, time_scale=request.time_scale,
                        allow_remote=request.allow_remote)


def replay_commands(run: ScenarioRun, request: RunRequest) -> list[str]:
    pytest_cmd = ["pytest", request.nodeid, "--ehrlab-seed", str(run.seed), "--ehrlab-mode", run.mode]
    cli = ["ehrlab", "run", run.file.as_posix(), "--mode", run.mode, "--seed", str(run.seed)]
    if run.mode == "real" and request.time_scale != 1.0:
        cli += ["--time-scale", f"{request.time_scale:g}"]
        pytest_cmd += ["--ehrlab-time-scale", f"{request.time_scale:g}"]
    return [shlex.join(pytest_cmd), shlex.join(cli)]


def failure_message(run: ScenarioRun, request: RunRequest, report: Path | None) -> str:
    failing = [c for c in run.checks if not c.passed]
    if run.reason is not None:  # INCONCLUSIVE or ABORTED: the lab could not judge
        lines = [f"ehrlab scenario {run.scenario.name} ({run.file.as_posix()}) {run.verdict.upper()} (mode "
                 f"{run.mode}, seed {run.seed}): {run.reason}"]
    else:
        lines = [f"ehrlab scenario {run.scenario.name} ({run.file.as_posix()}) FAILED: {len(failing)} of "
                 f"{len(run.checks)} check(s) failed (mode {run.mode}, seed {run.seed})"]
    for check in failing:
        lines += [f"  - {check.name}: observed {observed_text(check.observed, check.unit)}; "
                  f"expected {check.threshold}",
                  f"      {check.detail}",
                  f"      runbook: {check.source}"]
    commands = replay_commands(run, request)
    lines += [f"replay: {commands[0]}", f"    or: {commands[1]}"]
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)


def run_summary(run: ScenarioRun, request: RunRequest, run_id: str, started_at: str) -> RunSummary:
    return RunSummary(run_id=run_id, started_at=started_at, seed=run.seed, mode=run.mode,
                      time_scale=request.time_scale if run.mode == "real" else 1.0, verdict=run.verdict,
                      replay=replay_commands(run, request)[1], scenarios=[summarize(run)],
                      replay_identical=run.mode == "virtual")


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "test"


def write_report(run: ScenarioRun, request: RunRequest, report_dir: Path) -> Path:
    """`report_dir/<stamp>-<test>-<scenario>-<mode>-seed<N>/`: summary.json, journal.jsonl and everything derived
    (junit.xml, summary.md, report.html, allure-results/, incident.md). No `latest` link: tests may run in
    parallel (xdist), and a link every worker rewrites would point at any of them."""
    now = RealClock().now()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{_slug(request.nodeid)}-{run.scenario.name}-{run.mode}-seed{run.seed}"
    run_id, n = base, 1
    while True:
        try:
            (report_dir / run_id).mkdir(parents=True)  # atomic: two xdist workers never share a directory
            break
        except FileExistsError:
            n += 1
            run_id = f"{base}-{n}"
    directory = report_dir / run_id
    started = run.journal.events[0].wall if run.journal.events else None  # real mode: the run's wall start
    summary = run_summary(run, request, run_id, started or wall_stamp(now))
    lines = list(run.journal.lines())
    (directory / "summary.json").write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (directory / "journal.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    write_derived(directory, summary, [parse_line(line) for line in lines])
    return directory


def timeline(events: list[Event]) -> list[str]:
    """The run's notable moments (faults, breaker transitions, health, flags, operator steps), in time order."""
    out = [(m.t, i, f"{scenario_clock(m.t)} {m.text}") for i, m in enumerate(moments(events))]
    for i, event in enumerate(events):
        if isinstance(event, StepDone):
            out.append((event.t, len(out) + i, f"{scenario_clock(event.t)} Step {event.step_id}: {event.action} "
                                               f"on {event.vendor}"))
        elif isinstance(event, StepFailed):
            out.append((event.t, len(out) + i, f"{scenario_clock(event.t)} Step {event.step_id} FAILED: "
                                               f"{event.action} on {event.vendor} ({event.error.split(':')[0]})"))
    return [text for _, _, text in sorted(out, key=lambda item: (item[0], item[1]))]


class _StepFailed(AssertionError):
    """Raised inside an Allure step to mark it failed (Allure's status for an AssertionError), then swallowed."""


def report_to_allure(run: ScenarioRun, request: RunRequest) -> None:
    """The timeline and the checks as Allure steps of the running test, the summary and the journal as
    attachments. Without allure-pytest installed (or without `--alluredir`) this does nothing."""
    try:
        import allure
    except ImportError:
        return
    title = f"ehrlab scenario {run.scenario.name}: {run.verdict.upper()} (mode {run.mode}, seed {run.seed})"
    with suppress(_StepFailed), allure.step(title):
        with allure.step("timeline"):
            for line in timeline(run.journal.events):
                with allure.step(line):
                    pass
        for check in run.checks:
            with suppress(_StepFailed), allure.step(
                    f"check {check.name}: {check.verdict.upper()} (observed "
                    f"{observed_text(check.observed, check.unit)}; expected {check.threshold})"):
                if not check.passed:
                    raise _StepFailed(f"{check.detail}\nrunbook: {check.source}")
        if run.verdict == "fail":
            raise _StepFailed(f"{sum(1 for c in run.checks if not c.passed)} check(s) failed")
    summary = run_summary(run, request, f"{run.scenario.name}-{run.mode}-seed{run.seed}", "")
    allure.attach(render_markdown(summary), name=f"{run.scenario.name} summary",
                  attachment_type=allure.attachment_type.TEXT)
    allure.attach("".join(line + "\n" for line in run.journal.lines()), name=f"{run.scenario.name} journal.jsonl",
                  attachment_type=allure.attachment_type.TEXT, extension="jsonl")
