"""`allure-results/`: the run in the Allure 2 results format (read by Allure 2 and by the Allure 3 report
generator from npm): one `<uuid>-result.json` per check, and `environment.properties`.

Hand-written rather than through allure-pytest / allure-python-commons: those record a live pytest session
with wall-clock times and random UUIDs; here the results are rendered after the fact from the journal, with
UUIDs derived from the run id and the check (uuid5) and times from the run's start stamp plus scenario time,
so re-rendering or replaying a run gives the same files.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.checks.result import CheckResult
from harness.report.models import RunSummary, ScenarioSummary, parse_started_at
from harness.report.series import ScenarioSeries
from harness.report.text import is_lab_check, observed_text
from harness.report.timeline import fault_params, scenario_clock

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/ehrlab/ehrlab/allure-results")
Status = Literal["passed", "failed", "broken", "skipped"]
_CRITICAL_WORDS = ("consent", "phi", "lost", "duplicat", "credential", "token", "audit")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Label(_Model):
    name: str
    value: str


class Parameter(_Model):
    name: str
    value: str


class StatusDetails(_Model):
    message: str
    trace: str


class Step(_Model):
    name: str
    status: Status = "passed"
    stage: Literal["finished"] = "finished"
    start: int
    stop: int
    steps: list[Step] = []
    parameters: list[Parameter] = []
    attachments: list[str] = []


class AllureResult(_Model):
    """Field names as Allure reads them (camelCase)."""

    uuid: str
    historyId: str
    testCaseId: str
    name: str
    fullName: str
    description: str
    status: Status
    statusDetails: StatusDetails
    stage: Literal["finished"] = "finished"
    labels: list[Label]
    parameters: list[Parameter]
    links: list[str] = []
    attachments: list[str] = []
    steps: list[Step]
    start: int
    stop: int


def run_start_ms(started_at: str) -> int:
    """The run's start (ISO-8601, or an older report's 20261203T181255Z) in epoch milliseconds; 0 when it is not
    one."""
    moment = parse_started_at(started_at)
    return 0 if moment is None else int(moment.timestamp() * 1000)


def check_severity(check: CheckResult) -> str:
    """Allure's severity for a check: invariants (data, consent, PHI, credentials, audit) are critical."""
    about = f"{check.check} {check.name}".lower()
    return "critical" if check.check == "invariant" or any(w in about for w in _CRITICAL_WORDS) else "normal"


def _status(scenario: ScenarioSummary, check: CheckResult) -> Status:
    """passed / failed; "broken" (Allure's "could not be judged") for a check that did not pass in a scenario
    the lab could not judge or that was cut short, and for a failed check about the lab itself."""
    if check.passed:
        return "passed"
    if str(scenario.verdict) in ("inconclusive", "aborted") or is_lab_check(check):
        return "broken"
    return "failed"


def result_uuid(run_id: str, scenario: str, check_name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{run_id}\n{scenario}\n{check_name}"))


def timeline_steps(series: ScenarioSeries, base_ms: int) -> list[Step]:
    """A step per fault window (its span, named by the fault's name) and per breaker transition (an instant), in
    time order."""

    def ms(t: float) -> int:
        return base_ms + round(t * 1000)

    steps: list[tuple[float, int, Step]] = []
    for w in series.faults:
        params = fault_params(dict(w.params))
        noun = "background condition" if w.background else "fault"
        name = (f"{scenario_clock(w.start)}–{scenario_clock(w.stop)} {noun} {w.fault_id} \"{w.title}\": {w.fault} "
                f"on {w.target}" + (f" ({params})" if params else ""))
        steps.append((w.start, 0, Step(name=name, start=ms(w.start), stop=ms(w.stop),
                                       parameters=[Parameter(name=k, value=v) for k, v in w.params])))
    for lane in series.breakers:
        for before, after in zip(lane.spans, lane.spans[1:], strict=False):
            name = f"{scenario_clock(after.start)} breaker {lane.breaker}: {before.state} → {after.state}"
            steps.append((after.start, 1, Step(name=name, start=ms(after.start), stop=ms(after.start))))
    return [step for _, _, step in sorted(steps, key=lambda s: (s[0], s[1], s[2].name))]


def scenario_results(run: RunSummary, scenario: ScenarioSummary, series: ScenarioSeries,
                     base_ms: int) -> list[AllureResult]:
    steps = timeline_steps(series, base_ms)
    stop = base_ms + round(series.end_s * 1000)
    out: list[AllureResult] = []
    seen: dict[str, int] = {}
    for check in scenario.checks:
        seen[check.name] = seen.get(check.name, 0) + 1
        key = check.name if seen[check.name] == 1 else f"{check.name}#{seen[check.name]}"
        full_name = f"ehrlab.{scenario.name}.{key}"
        message = (f"{check.verdict.upper()}: observed {observed_text(check.observed, check.unit)}; "
                   f"expected {check.threshold}")
        out.append(AllureResult(
            uuid=result_uuid(run.run_id, scenario.name, key),
            historyId=str(uuid.uuid5(NAMESPACE, full_name)),
            testCaseId=str(uuid.uuid5(NAMESPACE, "case\n" + full_name)),
            name=key, fullName=full_name,
            description=f"{scenario.description.strip()}\n\nSource: {check.source}",
            status=_status(scenario, check),
            statusDetails=StatusDetails(message=message, trace=f"{check.detail}\nsource: {check.source}"),
            labels=[Label(name="parentSuite", value="ehrlab"), Label(name="suite", value=scenario.name),
                    Label(name="subSuite", value=check.check), Label(name="tag", value=check.check),
                    Label(name="tag", value=run.mode), Label(name="severity", value=check_severity(check)),
                    Label(name="feature", value=scenario.runbook[0] if scenario.runbook else scenario.name),
                    Label(name="framework", value="ehrlab"), Label(name="language", value="python")],
            parameters=[Parameter(name="seed", value=str(run.seed)), Parameter(name="mode", value=run.mode)],
            steps=steps, start=base_ms, stop=stop,
        ))
    return out


def _property(text: str) -> str:
    """Escape for a Java .properties file (ISO 8859-1, backslash escapes)."""
    out = []
    for ch in text:
        if ch in "\\=:#!":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def environment_properties(run: RunSummary) -> str:
    values = [("run_id", run.run_id), ("mode", run.mode), ("seed", str(run.seed)),
              ("time_scale", f"{run.time_scale:g}"), ("verdict", run.verdict), ("replay", run.replay),
              ("scenarios", ", ".join(s.name for s in run.scenarios))]
    return "".join(f"{_property(k)}={_property(v)}\n" for k, v in values)


def write_allure(directory: Path, run: RunSummary, series: Sequence[ScenarioSeries]) -> None:
    """Replace `directory` with the run's Allure results."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    base = run_start_ms(run.started_at)
    for scenario, scenario_series in zip(run.scenarios, series, strict=True):
        for result in scenario_results(run, scenario, scenario_series, base):
            (directory / f"{result.uuid}-result.json").write_text(result.model_dump_json(indent=2) + "\n",
                                                                  encoding="utf-8")
        base += round(scenario_series.end_s * 1000)
    (directory / "environment.properties").write_text(environment_properties(run), encoding="latin-1")
