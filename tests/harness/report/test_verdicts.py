"""ABORTED and INCONCLUSIVE read plainly in report.html and incident.md; a real-mode report's time axis reads
wall-clock time from the events' `wall` stamps and does not promise a byte-identical replay.

The verdicts and the `wall` field are declared by `harness.report.models` and the journal's models; these tests
set them with `model_copy` (no validation) and a subclass, so they hold whether or not those declare them yet.
"""

from __future__ import annotations

from typing import Literal

from harness.checks.result import CheckResult
from harness.journal import Event, OperationEvent, ScenarioStarted
from harness.report.derived import scenario_items
from harness.report.html import render_html
from harness.report.incident import render_incident
from harness.report.models import RunSummary
from harness.report.series import wall_anchors
from tests.harness.report.builders import check, op, outage_journal, scenario, summary_for

LAG = CheckResult(name="lab[event_loop_lag]", check="lab", verdict="fail", observed=2.5, unit="s",
                  threshold="<= 0.5s", source="issue 13 (lab lateness)", detail="the event loop lagged 2.5 s at T+0:42")


def _with_verdict(summary: RunSummary, verdict: str) -> RunSummary:
    scenarios = [s.model_copy(update={"verdict": verdict}) for s in summary.scenarios]
    return summary.model_copy(update={"verdict": verdict, "scenarios": scenarios})


def _render(summary: RunSummary, events: list[Event]) -> tuple[str, str]:
    items = scenario_items(summary, events)
    return render_incident(summary, items), render_html(summary, items)


def test_an_aborted_run_says_when_it_was_cut_short_and_what_the_checks_cover() -> None:
    events = [e for e in outage_journal() if e.t <= 45.2]  # no scenario.end: the journal was cut short
    events.append(op(45.7, ok=False, op_id=999))
    summary = _with_verdict(summary_for([("outage", [check("breaker_opens[medplum]")])]), "aborted")
    md, html = _render(summary, events)
    banner = ("ABORTED: the run was interrupted at T+0:45.7 of scenario outage (Ctrl-C or SIGTERM). The journal and "
              "the checks cover only what happened until then")
    assert f"> **{banner}" in md
    assert "**Status:** Interrupted (ABORTED) at T+0:45.7" in md
    assert "verdict ABORTED" in md
    assert f'<p class="banner aborted" role="alert">{banner}' in html
    assert '<span class="badge aborted">ABORTED</span>' in html
    assert html.index('class="banner aborted"') < html.index('<table>')  # at the top, before the overview


def test_an_inconclusive_run_gives_the_lab_checks_reason() -> None:
    checks = [check("breaker_opens[medplum]"), LAG]
    summary = _with_verdict(summary_for([("outage", checks)]), "inconclusive")
    md, html = _render(summary, outage_journal(checks=checks))
    reason = "lab[event_loop_lag]: observed 2.5 s, tolerance <= 0.5s (the event loop lagged 2.5 s at T+0:42)"
    assert f"INCONCLUSIVE: the lab could not judge this run (exit 3): outage: {reason}" in md
    assert f"INCONCLUSIVE: the lab could not judge this run (exit 3): {reason}" in md  # the scenario's banner
    assert "**Status:** Not judged (INCONCLUSIVE" in md
    assert "- [ ] Re-run: the lab could not judge (`lab[event_loop_lag]`)" in md
    assert "Fix `lab[event_loop_lag]`" not in md
    assert "failed check(s): lab" not in md  # the lab's lateness is not an impact on the system under test
    assert '<p class="banner inconclusive" role="alert">INCONCLUSIVE: the lab could not judge' in html
    assert '<span class="badge inconclusive">INCONCLUSIVE</span>' in html


def test_pass_and_fail_have_no_banner() -> None:
    checks = [check("breaker_opens[medplum]"), check("latency", passed=False)]
    md, html = _render(summary_for([("outage", checks)]), outage_journal(checks=checks))
    assert "ABORTED" not in md
    assert "INCONCLUSIVE" not in md
    assert 'class="banner' not in html


class Walled(OperationEvent):
    """An operation with the real-mode `wall` stamp (ISO-8601 UTC)."""

    wall: str | None = None


def _real(summary: RunSummary) -> RunSummary:
    return summary.model_copy(update={"mode": "real"})


def test_real_mode_axis_reads_wall_clock_time_from_the_events() -> None:
    events: list[Event] = scenario([Walled(t=float(i), op_id=i, operation="read_patient", vendor="medplum",
                                           started=float(i), duration_ms=5.0, ok=True, error=None,
                                           wall=f"2026-03-04T09:{15 + i // 60:02d}:{i % 60:02d}.250000Z")
                                    for i in range(1, 120)], name="outage")
    summary = _real(summary_for([("outage", [])]))
    _, html = _render(summary, events)
    assert ">09:15:00</text>" in html  # T+0 maps through the nearest stamp (T+1 s = 09:15:01.25)
    assert ">09:16:00</text>" in html
    assert 'class="tick" text-anchor="end">09:17:00</text>' in html  # the last label kept inside the chart
    assert "wall-clock time (UTC, hh:mm:ss; scenario start 2026-03-04 09:15:00)" in html
    assert "does not promise a byte-identical replay" in html
    assert "same seed, same journal" not in html


def test_real_mode_without_wall_stamps_keeps_scenario_time() -> None:
    summary = _real(summary_for([("outage", [])]))
    _, html = _render(summary, outage_journal())
    assert "This journal has no wall stamps: the time axis reads scenario time." in html
    assert "scenario time (m:ss)" in html
    assert "does not promise a byte-identical replay" in html


def test_wall_anchors_follow_the_time_scale_and_ignore_bad_stamps() -> None:
    class WalledStart(ScenarioStarted):
        wall: str | None = None

    start = WalledStart(t=0.0, scenario="s", file="s.yaml", seed=1, mode="real", duration_s=60.0,
                        wall="2026-03-04T09:15:00+00:00")
    bad = Walled(t=5.0, op_id=1, operation="x", vendor="v", started=5.0, duration_ms=1.0, ok=True, error=None,
                 wall="not a time")
    anchors = wall_anchors([start, bad], time_scale=10.0)
    assert anchors is not None
    assert anchors.label(600.0) == "09:16:00"  # 600 scenario seconds at 10x are one wall minute
    assert wall_anchors([bad]) is None


class Inconclusive(Event):
    """`lab.inconclusive` as the runner journals it (declared here: the reports read it by kind)."""

    kind: Literal["lab.inconclusive"] = "lab.inconclusive"
    reason: str


class Aborted(Event):
    kind: Literal["lab.aborted"] = "lab.aborted"
    signal: str


def test_inconclusive_reasons_come_from_the_summary_else_the_journal() -> None:
    summary = _with_verdict(summary_for([("outage", [check("breaker_opens[medplum]")])]), "inconclusive")
    summary = summary.model_copy(update={"scenarios": [summary.scenarios[0].model_copy(
        update={"reason": "fault f1 could not be injected"})]})
    events = outage_journal()
    events.insert(2, Inconclusive(t=30.0, reason="fault f1 could not start: proxy refused the toxic"))
    md, html = _render(summary, events)
    assert ("INCONCLUSIVE: the lab could not judge this run (exit 3): outage: fault f1 could not be injected. "
            "The checks") in md  # the summary's reason says it; the journal's is in the timeline
    assert "| T+0:30.0 | The lab could not judge: fault f1 could not start: proxy refused the toxic |" in md
    assert "fault f1 could not be injected" in html
    unstated = summary.model_copy(update={"scenarios": [summary.scenarios[0].model_copy(update={"reason": None})]})
    md, _ = _render(unstated, events)
    assert ("INCONCLUSIVE: the lab could not judge this run (exit 3): outage: fault f1 could not start: proxy "
            "refused the toxic.") in md


def test_an_aborted_run_names_the_signal_and_what_never_ran() -> None:
    events = [e for e in outage_journal() if e.t <= 45.0]
    events.append(Aborted(t=45.0, signal="SIGTERM"))
    summary = _with_verdict(summary_for([("outage", [])]), "aborted")
    summary = summary.model_copy(update={"not_run": ["scenarios/medplum-outage.yaml"]})
    md, _ = _render(summary, events)
    assert ("> **ABORTED: the run was interrupted at T+0:45.0 of scenario outage (SIGTERM). The journal and the "
            "checks cover only what happened until then: this is no verdict on the system under test. Not run: "
            "scenarios/medplum-outage.yaml.**") in md
    assert "| T+0:45.0 | Run interrupted (aborted, SIGTERM): nothing after this moment was observed |" in md


def test_a_real_mode_incident_timeline_has_wall_clock_times() -> None:
    events: list[Event] = scenario([Walled(t=float(i), op_id=i, operation="read_patient", vendor="medplum",
                                           started=float(i), duration_ms=5.0, ok=i != 30, error=None,
                                           wall=f"2026-03-04T09:15:{i:02d}.250000Z") for i in range(1, 60)],
                                   name="outage", duration_s=60.0)
    md, _ = _render(_real(summary_for([("outage", [])])), events)
    assert "| Time (scenario) | Wall clock (UTC) | Event |" in md
    assert "| T+0:30.0 | 09:15:30.250 | First failed operation (medplum) |" in md
    assert "does not promise a byte-identical replay" in md
