"""`report.html`: one self-contained page per run (inline CSS and SVG, no script, no network), with per
scenario the timeline chart (`harness.report.chart`), the incident severity, the verdict table, and the run's
seed and replay command. Rendered server-side from summary.json and the journal, so the same run gives the
same bytes and the page reads the same without JavaScript.

An ABORTED or INCONCLUSIVE verdict opens the page (and the scenario it concerns) with a banner that says what
it means (`harness.report.text.verdict_banner`). A real-mode run's time axis reads wall-clock time (UTC) from
the events' `wall` stamps when the journal has them, and the page says that a real-mode run does not promise a
byte-identical replay."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from harness.report.chart import timeline_svg
from harness.report.incident import ScenarioIncident, run_banner, scenario_banner, scenario_severity, verdict_of
from harness.report.models import RunSummary
from harness.report.series import wall_anchors
from harness.report.text import REAL_MODE_REPLAY, observed_text

CSS = """
:root { --ok: #2e7d32; --warn: #f9a825; --bad: #c62828; --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 24px auto; max-width: 1240px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 32px 0 6px; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f5f7fa; border: 1px solid var(--line); padding: 8px 10px; white-space: pre-wrap;
      overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600;
         font-size: 12px; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); }
.badge.inconclusive { background: #b26a00; } .badge.aborted { background: #52606d; }
.banner { border-left: 6px solid; padding: 8px 12px; margin: 10px 0 14px; font-weight: 600; }
.banner.inconclusive { border-color: #b26a00; background: #fff4e0; }
.banner.aborted { border-color: #52606d; background: #eef2f6; }
.badge.sev { background: #334e68; }
.meta { color: var(--muted); } .desc { max-width: 960px; }
section.scenario { border-top: 2px solid var(--line); margin-top: 28px; }
.chart { overflow-x: auto; }
svg.timeline { font: 11px system-ui, sans-serif; background: #fff; }
svg .chart-title { font-size: 13px; font-weight: 600; fill: var(--ink); }
svg .lane { fill: var(--ink); font-weight: 600; } svg .tick { fill: var(--muted); }
svg .note { fill: var(--muted); font-style: italic; }
svg .axis { stroke: #829ab1; stroke-width: 1; } svg .grid { stroke: #eef2f6; stroke-width: 1; }
svg .fault-window { fill: #7e57c2; fill-opacity: 0.13; stroke: #7e57c2; stroke-opacity: 0.55;
                    stroke-dasharray: 4 3; pointer-events: none; }
svg .fault-bar, svg .fault-swatch { fill: #7e57c2; fill-opacity: 0.8; }
svg .fault-label { fill: #fff; font-weight: 600; paint-order: stroke; stroke: #4527a0; stroke-width: 2px; }
svg .fault-bar.background, svg .fault-swatch.background { fill: #b39ddb; fill-opacity: 0.45; }
svg .fault-label.background { fill: #4527a0; stroke: none; font-weight: 400; font-style: italic; }
svg .closed { fill: var(--ok); } svg .half-open { fill: var(--warn); } svg .open { fill: var(--bad); }
svg .healthy { fill: #66bb6a; } svg .warning { fill: #ffca28; } svg .critical { fill: #ef5350; }
svg .zero { stroke: var(--bad); stroke-width: 2; }
svg .p50 { stroke: #1e88e5; fill: #1e88e5; } svg .p95 { stroke: #ef6c00; fill: #ef6c00; }
svg polyline.series, svg line.series { fill: none; stroke-width: 2; } svg .hit { fill-opacity: 0; stroke: none; }
svg .q-waiting { stroke: #1e88e5; } svg .q-delayed { stroke: #9e9e9e; stroke-dasharray: 4 2; }
svg .q-active { stroke: #2e7d32; } svg .q-failed { stroke: #c62828; }
svg .swatch { stroke: #fff; }
tr.fail td { background: #fdecea; } tr.inconclusive td { background: #fff4e0; }
"""


def _e(text: str) -> str:
    return escape(text, quote=True)


def _verdict_table(item: ScenarioIncident) -> str:
    rows = ["<table class=\"verdicts\"><thead><tr><th>check</th><th>verdict</th><th>observed</th>"
            "<th>threshold</th><th>runbook source</th><th>detail</th></tr></thead><tbody>"]
    for c in item.summary.checks:
        rows.append(f'<tr class="{c.verdict}"><td><code>{_e(c.name)}</code></td>'
                    f'<td><span class="badge {c.verdict}">{c.verdict.upper()}</span></td>'
                    f"<td>{_e(observed_text(c.observed, c.unit))}</td><td>{_e(c.threshold)}</td>"
                    f"<td>{_e(c.source)}</td><td>{_e(c.detail)}</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def _banner(verdict: str, text: str | None) -> str:
    return f'<p class="banner {_e(verdict)}" role="alert">{_e(text)}</p>' if text else ""


def _scenario(run: RunSummary, item: ScenarioIncident, index: int) -> str:
    s = item.summary
    verdict = verdict_of(s)
    severity = scenario_severity(item)
    share = s.operations_failed / s.operations * 100 if s.operations else 0.0
    wall = wall_anchors(item.events, run.time_scale) if run.mode == "real" else None
    if run.mode != "real":
        axis = "Times are scenario time."
    elif wall is not None:
        axis = "The time axis reads wall-clock time (UTC) from the events' wall stamps."
    else:
        axis = "This journal has no wall stamps: the time axis reads scenario time."
    return "".join([
        f'<section class="scenario" id="scenario-{index}">',
        f'<h2>{_e(s.name)} <span class="badge {_e(verdict)}">{_e(verdict.upper())}</span> '
        f'<span class="badge sev" title="incident severity, runbook 001">{_e(severity.label)}</span></h2>',
        _banner(verdict, scenario_banner(item)),
        f'<p class="meta"><code>{_e(s.file)}</code> · runbook {_e("; ".join(s.runbook))} · '
        f"{s.operations} operations, {s.operations_failed} failed ({share:.1f}%) over "
        f"{s.duration_s:g} s of scenario time</p>",
        f'<p class="desc">{_e(s.description.strip())}</p>',
        f'<div class="chart">{timeline_svg(item.series, wall)}</div>',
        f'<p class="meta">{_e(axis)} Severity {_e(severity.label)} ({_e(" → ".join(severity.path))}): '
        f"{_e('; '.join(severity.reasons))}. See incident.md.</p>",
        _verdict_table(item),
        "</section>",
    ])


def render_html(run: RunSummary, items: Sequence[ScenarioIncident]) -> str:
    verdict = verdict_of(run)
    scale = f", time scale {run.time_scale:g}x" if run.time_scale != 1 else ""
    overview = ["<table><thead><tr><th>scenario</th><th>verdict</th><th>checks</th><th>failing</th></tr></thead>"
                "<tbody>"]
    for index, item in enumerate(items, start=1):
        s = item.summary
        passed = sum(1 for c in s.checks if c.passed)
        failing = ", ".join(c.name for c in s.checks if not c.passed) or "-"
        overview.append(f'<tr class="{_e(verdict_of(s))}"><td><a href="#scenario-{index}">{_e(s.name)}</a></td>'
                        f'<td><span class="badge {_e(verdict_of(s))}">{_e(verdict_of(s).upper())}</span></td>'
                        f"<td>{passed}/{len(s.checks)}</td><td>{_e(failing)}</td></tr>")
    overview.append("</tbody></table>")
    if run.mode == "real" or not getattr(run, "replay_identical", True):
        replay = f"Replay the run (same seed; {REAL_MODE_REPLAY}):"
        times = "Time axes read wall-clock time (UTC) where the journal has wall stamps, else scenario time"
    else:
        replay = "Replay the run (same seed, same journal):"
        times = "Times are scenario time"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ehrlab run {_e(run.run_id)}: {_e(verdict.upper())}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>ehrlab run <code>{_e(run.run_id)}</code> <span class="badge {_e(verdict)}">'
        f"{_e(verdict.upper())}</span></h1>",
        _banner(verdict, run_banner(run, items)),
        f'<p class="meta">Mode {_e(run.mode)}, seed <strong>{run.seed}</strong>{_e(scale)}. {_e(replay)}</p>',
        f'<pre class="replay"><code>{_e(run.replay)}</code></pre>',
        "".join(overview),
        *[_scenario(run, item, index) for index, item in enumerate(items, start=1)],
        f'<p class="meta">Rendered from summary.json and journal.jsonl. {_e(times)}; shaded bands are '
        "fault windows; background conditions have a lighter lane of their own.</p>",
        "</body></html>",
        "",
    ])
