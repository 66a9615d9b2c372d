"""`incident.md`: one incident report per scenario in runbook 001's template (its Appendix, "Incident Report
Template"), severity by 001's classification (`harness.report.severity`), the verification checklist of
001 §Response Procedures "6. Verify Resolution", filled from the journal and the check results.

The root cause names each injected fault by its `name` and the components that amplified it
(`harness.report.cause`); background faults are conditions, never the cause. Data loss counts records lost,
not jobs failed (`harness.report.records`). An ABORTED or INCONCLUSIVE verdict opens the report with what it
means (`harness.report.text.verdict_banner`).

Times are scenario time (T+m:ss.s from the scenario's start): a virtual run has no wall-clock time, and the
date comes from the run id. Counts, vendor names, fault parameters, record ids and error class names only: no
PHI, no token, no resource body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.journal import Event, OperationEvent, StepDone
from harness.report.cause import RootCause, cause_lines, headline, root_cause
from harness.report.models import RunSummary, ScenarioSummary
from harness.report.series import ScenarioSeries, wall_anchors
from harness.report.severity import CITATION, Evidence, Severity, classify, gather
from harness.report.text import REAL_MODE_REPLAY, inconclusive_reasons, is_lab_check, observed_text, verdict_banner
from harness.report.timeline import fault_params, moments, scenario_clock


@dataclass(frozen=True, slots=True)
class ScenarioIncident:
    summary: ScenarioSummary
    series: ScenarioSeries
    events: Sequence[Event]


def _date(started_at: str) -> tuple[str, str]:
    """(YYYYMMDD, YYYY-MM-DD) from the run's start stamp (20261203T181255Z), else from nothing."""
    digits = started_at.replace("-", "")[:8]  # ISO-8601 (2026-12-03T...) or the older compact stamp
    if len(digits) == 8 and digits.isdigit():
        return digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return "00000000", "unknown"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _steps(item: ScenarioIncident) -> list[StepDone]:
    """Operator steps that changed the system (a manual step skipped in CI changed nothing)."""
    return [e for e in item.events if isinstance(e, StepDone) and not e.params.get("skipped")]


def verdict_of(summary: ScenarioSummary | RunSummary) -> str:
    """The verdict as a string: pass, fail, inconclusive or aborted (whatever models.py declares)."""
    return str(getattr(summary, "verdict", "fail"))


def _kind(event: Event) -> str:
    return str(getattr(event, "kind", ""))


def interrupted_at(events: Sequence[Event]) -> float:
    """When an aborted scenario was cut short: its interruption event (`lab.aborted`) if the journal has one,
    else its last event."""
    aborts = [e.t for e in events if "abort" in _kind(e)]
    return aborts[0] if aborts else max((e.t for e in events), default=0.0)


def _signal(events: Sequence[Event]) -> str | None:
    return next((str(getattr(e, "signal", "")) or None for e in events if "abort" in _kind(e)), None)


def why_inconclusive(item: ScenarioIncident) -> list[str]:
    """Why the lab could not judge a scenario: the summary's reason (the runner's words, with the figure), else
    the journal's `lab.inconclusive` reasons and a `lab.timing` past tolerance; then the failing lab checks (each
    once)."""
    stated = getattr(item.summary, "reason", None)
    reasons = [stated] if isinstance(stated, str) and stated else []
    for event in [] if reasons else item.events:
        if _kind(event) == "lab.inconclusive":
            reasons.append(str(getattr(event, "reason", "")))
        elif _kind(event) == "lab.timing" and getattr(event, "exceeded", False):
            reasons.append(f"the lab ran late past its tolerance of {getattr(event, 'tolerance_s', 0.0):g} s "
                           f"({getattr(event, 'worst', '')})")
    reasons += inconclusive_reasons(item.summary.checks)
    return list(dict.fromkeys(r for r in reasons if r))


def scenario_banner(item: ScenarioIncident) -> str | None:
    """What an ABORTED or INCONCLUSIVE scenario verdict means, in one sentence; None otherwise."""
    verdict = verdict_of(item.summary)
    return verdict_banner(verdict, interrupted_at=scenario_clock(interrupted_at(item.events)),
                          signal=_signal(item.events), reasons=why_inconclusive(item))


def _title(item: ScenarioIncident, severity: Severity, cause: RootCause) -> str:
    background = [w.title for w in cause.conditions]
    under = f"; under a background condition: {', '.join(dict.fromkeys(background))}" if background else ""
    if not cause.causes:
        what = severity.reasons[0] if severity.level != "P3" else "no impact observed"
        actions = list(dict.fromkeys(f"{s.action}@{s.vendor}" for s in _steps(item)))
        why = f"after operator steps: {', '.join(actions[:4])}" + (" ..." if len(actions) > 4 else "") \
            if actions else ("no incident fault injected" if background else "no fault injected")
        return f"{item.summary.name}: {what} ({why}{under})"
    names: list[str] = []
    for c in cause.causes:
        w = c.fault
        custom = w.title != f"{w.fault}@{w.target}"
        label = f"{w.title} ({w.fault} on {w.target})" if custom else f"{w.fault} on {w.target}"
        if label not in names:
            names.append(label)
    return f"{item.summary.name}: {', '.join(names)}{under}"


def _resolved(item: ScenarioIncident) -> tuple[bool, bool, bool]:
    """(services healthy, error rate normal, response times within SLA) at the scenario's end."""
    series = item.series
    healthy = all(w.stopped for w in series.faults if not w.background) and all(
        lane.spans[-1].state == "CLOSED" for lane in series.breakers if lane.spans)
    last = next((b for b in reversed(series.buckets) if b.total), None)
    rate = last.success_rate if last else None
    errors_ok = rate is None or rate > 0.99
    latency_ok = last is None or last.mean_ms is None or last.mean_ms < 500
    return healthy, errors_ok, latency_ok


def _impact(ev: Evidence, item: ScenarioIncident) -> list[str]:
    share = ev.failed / ev.operations * 100 if ev.operations else 0.0
    affected = [v.vendor for v in ev.vendors if v.failed] or ["none"]
    failed_times = [e.t for e in item.events if isinstance(e, OperationEvent) and not e.ok]
    duration = (f"{max(failed_times) - min(failed_times):.1f} s from the first failed operation to the last"
                if failed_times else "no failed operation")
    faulted = sum(w.stop - w.start for w in item.series.faults if not w.background)
    lines = [
        f"- Services affected: {', '.join(affected)}",
        f"- Users affected: operations failed {ev.failed} of {ev.operations} ({share:.1f}%)",
    ]
    for v in ev.vendors:
        worst = "n/a" if v.worst_rate is None else f"{v.worst_rate * 100:.1f}%"
        down = f"; down {v.down_s:.1f} s" if v.outages else ""
        lines.append(f"  - {v.vendor}: {v.failed} of {v.operations} failed; worst bucket success {worst}{down}")
    lines.append(f"- Duration: {duration}; faults active {faulted:.1f} s in total")
    lines += _data_loss(ev)
    return lines


def _data_loss(ev: Evidence) -> list[str]:
    """Records lost, not jobs failed: a failed job whose record a later sync wrote lost nothing."""
    rec = ev.records
    if not rec.jobs and not rec.lost:
        return [f"- Data loss: {'Yes' if ev.data_loss else 'No'} (no job events in the journal)"]
    failed = f"none of {rec.jobs} jobs failed for good"
    if rec.jobs_failed:
        failed = (f"{rec.jobs_failed} of {rec.jobs} jobs failed for good, {rec.resynced} of them synced later (by "
                  "another job, a retry or reconciliation)")
    lines = [f"- Data loss: {'Yes' if ev.data_loss else 'No'} ({len(rec.lost)} record(s) lost; {failed}; "
             f"{rec.jobs_unfinished} unfinished at the end)"]
    if rec.consent_refused:
        lines.append(f"  - {rec.consent_refused} job(s) or enqueue(s) refused for consent: consent enforced, "
                     "not data loss (002 §3.2)")
    shown = rec.lost[:5]
    lines += [f"  - lost: {r.resource} {r.record_id}: {r.how} at {scenario_clock(r.t)}" for r in shown]
    if len(rec.lost) > len(shown):
        lines.append(f"  - ... and {len(rec.lost) - len(shown)} more")
    for name in ev.lost_checks:
        lines.append(f"  - check `{name}` failed (jobs lost or duplicated)")
    return lines


def _verification(ev: Evidence, item: ScenarioIncident) -> list[str]:
    healthy, errors_ok, latency_ok = _resolved(item)
    last = next((b for b in reversed(item.series.buckets) if b.total), None)
    rate = "n/a" if last is None or last.success_rate is None else f"{last.success_rate * 100:.1f}%"
    mean = "n/a" if last is None or last.mean_ms is None else f"{last.mean_ms:g} ms"

    def box(ok: bool) -> str:
        return "[x]" if ok else "[ ]"

    lines = [
        f"- {box(healthy)} All services healthy (every fault stopped, every breaker CLOSED at the end)",
        f"- {box(errors_ok)} Error rates returned to normal (last bucket success {rate}; > 99% healthy, 000 §7)",
        f"- {box(latency_ok)} Response times within SLA (last bucket mean {mean}; < 500 ms healthy, 000 §7)",
        f"- {box(not ev.data_loss)} No data loss",
    ]
    for check in item.summary.checks:
        lines.append(f"- {box(check.passed)} `{check.name}`: {check.verdict.upper()}, observed "
                     f"{observed_text(check.observed, check.unit)}; expected {check.threshold} ({check.source})")
    return lines


def _root_cause(ev: Evidence, item: ScenarioIncident, cause: RootCause) -> list[str]:
    lines = cause_lines(cause)
    steps = _steps(item)
    for step in steps:
        params = fault_params(dict(step.params))
        lines.append(f"- Operator step {step.step_id}: `{step.action}` on {step.vendor}"
                     + (f" ({params})" if params else "") + f" at {scenario_clock(step.t)}")
    if not cause.causes and not steps:
        lines.insert(0, "- No fault was injected and no operator step was taken." if not cause.conditions
                     else "- No incident fault was injected and no operator step was taken.")
    if ev.errors:
        shown = ", ".join(f"{name} ×{count}" for name, count in ev.errors[:6])
        lines.append(f"- Errors seen by operations: {shown}")
    return lines


def _resolution(item: ScenarioIncident) -> list[str]:
    faults = [w for w in item.series.faults if not w.background]
    lines = [f'- Fault {w.fault_id} "{w.title}" removed by the scenario\'s timeline at {scenario_clock(w.stop)}'
             for w in faults if w.stopped]
    lines += [f'- Fault {w.fault_id} "{w.title}" was never removed' for w in faults if not w.stopped]
    for lane in item.series.breakers:
        last = lane.spans[-1] if lane.spans else None
        if last is not None and last.state == "CLOSED" and len(lane.spans) > 1:
            lines.append(f"- Breaker {lane.breaker} CLOSED for good at {scenario_clock(last.start)}")
        elif last is not None and last.state != "CLOSED":
            lines.append(f"- Breaker {lane.breaker} still {last.state} at the end")
    failed = [e.t for e in item.events if isinstance(e, OperationEvent) and not e.ok]
    if failed:
        lines.append(f"- Last failed operation at {scenario_clock(max(failed))}")
    return lines or ["- Nothing to resolve: no fault, no breaker transition, no failed operation."]


def _classification(severity: Severity) -> list[str]:
    return [
        f"Severity **{severity.label}** by {CITATION}; response time {severity.response_time}.",
        "",
        f"- Impact Assessment: {' → '.join(severity.path)} → {severity.level}",
        *[f"- {reason}" for reason in severity.reasons],
    ]


def scenario_severity(item: ScenarioIncident) -> Severity:
    return classify(gather(item.events, item.series, item.summary.checks))


def _real(run: RunSummary) -> bool:
    return run.mode == "real" or not getattr(run, "replay_identical", True)


def _timeline(run: RunSummary, item: ScenarioIncident) -> list[str]:
    """The moments as a table; a real-mode run's with their wall-clock time (UTC) beside scenario time."""
    wall = wall_anchors(item.events, run.time_scale) if run.mode == "real" else None
    if wall is None:
        return ["| Time (scenario) | Event |", "|------------|-------|",
                *[f"| {scenario_clock(m.t)} | {_md(m.text)} |" for m in moments(item.events)]]
    return ["| Time (scenario) | Wall clock (UTC) | Event |", "|------------|------------|-------|",
            *[f"| {scenario_clock(m.t)} | {wall.at(m.t).strftime('%H:%M:%S.%f')[:-3]} | {_md(m.text)} |"
              for m in moments(item.events)]]


def _status(item: ScenarioIncident, healthy: bool, errors_ok: bool) -> str:
    verdict = verdict_of(item.summary)
    if verdict == "aborted":
        return f"Interrupted (ABORTED) at {scenario_clock(interrupted_at(item.events))}"
    if verdict == "inconclusive":
        return "Not judged (INCONCLUSIVE: the lab could not judge this run)"
    return "Resolved" if healthy and errors_ok else "Unresolved at the end of the scenario"


def _actions(item: ScenarioIncident) -> list[str]:
    lines = []
    for c in item.summary.checks:
        if c.passed:
            continue
        if is_lab_check(c):
            lines.append(f"- [ ] Re-run: the lab could not judge (`{c.name}`): {_md(c.detail)} ({c.source})")
        else:
            lines.append(f"- [ ] Fix `{c.name}`: {_md(c.detail)} ({c.source})")
    return lines or ["- None: every check passed."]


def render_scenario(run: RunSummary, item: ScenarioIncident, number: int) -> str:
    ev = gather(item.events, item.series, item.summary.checks)
    severity = classify(ev)
    cause = root_cause(item.series.faults, item.events)
    compact, date = _date(run.started_at)
    healthy, errors_ok, _ = _resolved(item)
    passed = sum(1 for c in item.summary.checks if c.passed)
    banner = scenario_banner(item)
    said = headline(cause)
    incident_faults = len(cause.causes)
    background = f" and {len(cause.conditions)} background condition(s)" if cause.conditions else ""
    lines = [
        f"# Incident Report: {_title(item, severity, cause)}",
        "",
        *([f"> **{banner}**", ""] if banner else []),
        f"**Incident ID:** INC-{compact}-{number:03d}",
        f"**Severity:** {severity.label}",
        f"**Status:** {_status(item, healthy, errors_ok)}",
        f"**Date:** {date}",
        "",
        "## Summary",
        "",
        f"Scenario `{item.summary.name}` ({item.summary.file}; runbook {'; '.join(item.summary.runbook)}): "
        f"{incident_faults} fault(s) injected{background}, {ev.failed} of {ev.operations} operations failed, "
        f"{passed} of {len(item.summary.checks)} checks passed (verdict {verdict_of(item.summary).upper()}).",
        *(["", f"Root cause: {said}."] if said else []),
        "",
        "## Classification",
        "",
        *_classification(severity),
        "",
        "## Impact",
        "",
        *_impact(ev, item),
        "",
        "## Timeline",
        "",
        *_timeline(run, item),
        "",
        "## Root Cause",
        "",
        "As observed (the lab injected these faults and took these operator steps):",
        "",
        *_root_cause(ev, item, cause),
        "",
        "## Resolution",
        "",
        *_resolution(item),
        "",
        "## Verification Checklist",
        "",
        "001 §Response Procedures, 6. Verify Resolution, and the scenario's checks:",
        "",
        *_verification(ev, item),
        "",
        "## Action Items",
        "",
        *_actions(item),
        "",
    ]
    return "\n".join(lines)


def run_banner(run: RunSummary, items: Sequence[ScenarioIncident]) -> str | None:
    """What an ABORTED or INCONCLUSIVE run verdict means: where it was cut short (and what never ran), or why the
    lab could not judge."""
    verdict = verdict_of(run)
    if verdict == "aborted":
        cut = next((i for i in items if verdict_of(i.summary) == "aborted"), items[-1] if items else None)
        at = f"{scenario_clock(interrupted_at(cut.events))} of scenario {cut.summary.name}" if cut else None
        banner = verdict_banner(verdict, interrupted_at=at, signal=_signal(cut.events) if cut else None)
        not_run = [str(name) for name in getattr(run, "not_run", [])]
        if banner and not_run:
            banner += f" Not run: {', '.join(not_run)}."
        return banner
    reasons = [f"{i.summary.name}: {r}" for i in items if verdict_of(i.summary) == "inconclusive"
               for r in why_inconclusive(i)]
    return verdict_banner(verdict, reasons=reasons)


def render_incident(run: RunSummary, items: Sequence[ScenarioIncident]) -> str:
    banner = run_banner(run, items)
    head = [
        f"<!-- ehrlab run {run.run_id}: incident reports in runbook 001's template (Appendix), "
        "generated from summary.json and journal.jsonl -->",
        "",
        *([f"> **{banner}**", ""] if banner else []),
        f"Run `{run.run_id}`, mode {run.mode}, seed {run.seed}, verdict {verdict_of(run).upper()}. "
        f"Replay: `{run.replay}`" + (f" ({REAL_MODE_REPLAY})" if _real(run) else ""),
        "",
    ]
    body = [render_scenario(run, item, n) for n, item in enumerate(items, start=1)]
    return "\n".join(head) + "\n" + "\n---\n\n".join(body)
