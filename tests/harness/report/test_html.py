"""report.html: the chart drawn from the journal, at the right coordinates, self-contained, deterministic."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from harness.journal import Event
from harness.report.derived import scenario_items
from harness.report.html import render_html
from harness.report.svg import CHART_LEFT, PLOT_WIDTH, TimeScale, num
from tests.harness.report.builders import check, job, outage_journal, summary_for


def _render(events: list[Event] | None = None) -> str:
    checks = [check("breaker_opens[medplum]"), check("latency", passed=False)]
    events = events if events is not None else outage_journal(checks=checks)
    summary = summary_for([("outage", checks)])
    return render_html(summary, scenario_items(summary, events))


def test_fault_window_is_shaded_at_the_right_x() -> None:
    html = _render()
    scale = TimeScale(end_s=120.0)
    x0, x1 = scale.x(30.0), scale.x(60.0)
    assert x0 == round(CHART_LEFT + 30 / 120 * PLOT_WIDTH, 2)
    shaded = re.findall(r'<rect class="fault-window" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*'
                        r'data-fault="f1" data-start="30" data-stop="60"', html)
    assert shaded == [(num(x0), num(x1 - x0))]
    assert ">outage@medplum (f1)</text>" in html  # the fault's name labels its bar


def test_breaker_bands_success_bars_and_latency_lines_are_drawn() -> None:
    html = _render()
    scale = TimeScale(end_s=120.0)
    open_band = re.search(r'<rect class="breaker open" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', html)
    assert open_band is not None
    assert (open_band[1], open_band[2]) == (num(scale.x(32.0)), num(scale.x(92.0) - scale.x(32.0)))
    assert 'class="breaker half-open"' in html
    assert html.count('class="breaker closed"') == 2
    assert html.count('class="ok-bar critical"') == 15  # the 15 two-second buckets of the outage
    assert html.count('class="ok-bar healthy"') == 45
    assert 'class="series p50"' in html
    assert 'class="series p95"' in html


def test_queue_panel_only_with_job_events() -> None:
    assert 'class="series q-waiting"' not in _render()
    events = outage_journal(checks=[check("breaker_opens[medplum]"), check("latency", passed=False)])
    events[5:5] = [job(4.0, "job.added", "j1", delay_s=0.0, attempts=1),
                   job(4.5, "job.started", "j1", attempt=1, worker="w")]
    html = _render(events)
    for name in ("waiting", "delayed", "active", "failed"):
        assert f'class="series q-{name}"' in html
    assert "queue depth (jobs)" in html


def test_verdict_table_seed_and_replay_command() -> None:
    html = _render()
    assert "seed <strong>7</strong>" in html
    assert "ehrlab run scenarios/outage.yaml --mode virtual --seed 7" in html
    assert "<code>breaker_opens[medplum]</code>" in html
    assert '<tr class="fail"><td><code>latency</code></td>' in html
    assert "000_x.txt §2 (test)" in html
    assert "P1 - High" in html


def test_page_is_self_contained_and_well_formed() -> None:
    html = _render()
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"]

    class Strict(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in ("meta", "br"):
                self.open.append(tag)

        def handle_startendtag(self, tag: str, attrs: object) -> None:
            pass

        def handle_endtag(self, tag: str) -> None:
            assert self.open.pop() == tag

    parser = Strict()
    parser.feed(html)
    assert parser.open == []


def test_same_journal_same_bytes() -> None:
    assert _render() == _render()
