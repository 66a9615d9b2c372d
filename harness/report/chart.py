"""The timeline chart of one scenario, as inline SVG built from its derived series (`harness.report.series`).

Lanes top to bottom, on one scenario-time axis (wall-clock labels in real mode): the fault windows (bars
labelled with the fault's name; each window is also shaded across every panel below), the background
conditions in a lighter lane of their own (not shaded: they last the whole run and are not incidents), one
breaker band per breaker (CLOSED / HALF_OPEN / OPEN), the success rate per
bucket (bars coloured by runbook 000 §7's bands: > 99 %, 95-99 %, < 95 %), p50/p95 latency per bucket, and
queue depth (waiting / delayed / active / failed jobs) when the journal has job events. Hover titles give
exact values; nothing needs JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from harness.report.series import Bucket, FaultWindow, QueuePoint, ScenarioSeries, WallAnchors
from harness.report.svg import (
    CHAR_WIDTH,
    CHART_LEFT,
    CHART_WIDTH,
    PLOT_WIDTH,
    TimeScale,
    ValueScale,
    clock_label,
    element,
    line,
    nice_top,
    num,
    polyline,
    text,
    time_axis,
    value_axis,
)

TOP = 24
FAULT_ROW = 18
BREAKER_ROW = 20
PANEL_GAP = 26
SUCCESS_HEIGHT = 110
LATENCY_HEIGHT = 130
QUEUE_HEIGHT = 110
RIGHT = CHART_LEFT + PLOT_WIDTH
CHART_RIGHT_PAD = 10


def fault_rows(faults: Sequence[FaultWindow], scale: TimeScale) -> list[int]:
    """A row for each fault window so that no two bars or labels overlap (greedy, in start order)."""
    row_ends: list[float] = []
    rows = []
    for window in faults:
        x0 = scale.x(window.start)
        x1 = max(scale.x(window.stop), x0 + 6 + len(window.label()) * CHAR_WIDTH)
        row = next((i for i, end in enumerate(row_ends) if end + 4 <= x0), len(row_ends))
        if row == len(row_ends):
            row_ends.append(x1)
        else:
            row_ends[row] = x1
        rows.append(row)
    return rows


LABEL_X = 6


def _lane_label(y: float, label: str, cls: str = "lane") -> str:
    return text(LABEL_X, y, label, cls=cls)


def _fault_title(window: FaultWindow) -> str:
    params = ", ".join(f"{k}={v}" for k, v in window.params)
    kind = "background condition" if window.background else "fault"
    return (f"{kind} {window.title} ({window.fault_id}): {window.fault} → {window.target}"
            + (f" ({params})" if params else "") + f" {clock_label(window.start)}–{clock_label(window.stop)}"
            + ("" if window.stopped else " (never stopped)"))


def _fault_lane(windows: Sequence[FaultWindow], scale: TimeScale, y0: float, name: str,
                extra: str) -> tuple[str, float]:
    """One lane of labelled fault bars (as many rows as the labels need)."""
    parts = [_lane_label(y0 + 13, name)]
    rows = fault_rows(windows, scale)
    for window, row in zip(windows, rows, strict=True):
        x0, x1 = scale.x(window.start), scale.x(window.stop)
        y = y0 + row * FAULT_ROW
        parts.append(element("rect", {"class": f"fault-bar{extra}", "x": x0, "y": y + 2, "width": max(x1 - x0, 1.0),
                                      "height": FAULT_ROW - 4, "data_fault": window.fault_id,
                                      "data_name": window.title}, title=_fault_title(window)))
        parts.append(text(x0 + 3, y + 13, window.label(), cls=f"fault-label{extra}"))
    return "".join(parts), y0 + max(1, max(rows, default=0) + 1) * FAULT_ROW


def _faults(series: ScenarioSeries, scale: TimeScale, y0: float) -> tuple[str, float]:
    """The incident faults' lane, then a lighter lane of background conditions when there are any."""
    incident = [w for w in series.faults if not w.background]
    background = [w for w in series.faults if w.background]
    part, y = _fault_lane(incident, scale, y0, "faults", "")
    if not incident:
        part += text(CHART_LEFT + 4, y0 + 13, "no faults injected" if not background else "no incident fault",
                     cls="note")
    if background:
        lane, y = _fault_lane(background, scale, y + 2, "background", " background")
        part += lane
    return part, y


def _breakers(series: ScenarioSeries, scale: TimeScale, y0: float) -> tuple[str, float]:
    parts = []
    y = y0
    for lane in series.breakers:
        parts.append(_lane_label(y + 14, f"breaker {lane.breaker}"))
        for span in lane.spans:
            x0, x1 = scale.x(span.start), scale.x(span.stop)
            parts.append(element(
                "rect", {"class": f"breaker {span.state.lower().replace('_', '-')}", "x": x0, "y": y + 2,
                         "width": max(x1 - x0, 0.5), "height": BREAKER_ROW - 4},
                title=f"{lane.breaker} {span.state} {clock_label(span.start)}–{clock_label(span.stop)}"))
        y += BREAKER_ROW
    if not series.breakers:
        names = ", ".join(series.vendors) or "none"
        parts.append(_lane_label(y + 14, "breakers"))
        parts.append(text(CHART_LEFT + 4, y + 14, f"no breaker transitions ({names}: CLOSED throughout)",
                          cls="note"))
        y += BREAKER_ROW
    return "".join(parts), y


def _band(rate: float) -> str:
    return "healthy" if rate > 0.99 else "warning" if rate >= 0.95 else "critical"


def _success(buckets: Sequence[Bucket], scale: TimeScale, y0: float) -> str:
    vs = ValueScale(top=100.0, y0=y0, height=SUCCESS_HEIGHT)
    parts = [_lane_label(y0 + SUCCESS_HEIGHT / 2, "success rate"), value_axis(vs, CHART_LEFT, RIGHT, "{}%")]
    for bucket in buckets:
        rate = bucket.success_rate
        x0, x1 = scale.x(bucket.start), scale.x(bucket.end)
        if rate is None:
            continue
        y = vs.y(rate * 100)
        title = (f"{clock_label(bucket.start)}–{clock_label(bucket.end)}: {rate * 100:.1f}% "
                 f"({bucket.total - bucket.failed}/{bucket.total} ok)")
        parts.append(element("rect", {"class": f"ok-bar {_band(rate)}", "x": x0 + 0.5, "y": y,
                                      "width": max(x1 - x0 - 1, 0.5), "height": round(y0 + SUCCESS_HEIGHT - y, 2)},
                             title=title))
        if rate == 0:
            parts.append(line(x0 + 0.5, y - 1, x1 - 0.5, y - 1, "zero"))
    return "".join(parts)


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split at missing values so a line never bridges a bucket without operations."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append((x, y))
    return [s for s in out if s]


def _latency(buckets: Sequence[Bucket], scale: TimeScale, y0: float) -> str:
    top = nice_top(max((b.p95_ms or 0.0 for b in buckets), default=0.0))
    vs = ValueScale(top=top, y0=y0, height=LATENCY_HEIGHT)
    parts = [_lane_label(y0 + LATENCY_HEIGHT / 2 - 7, "latency (ms)"), _lane_label(y0 + LATENCY_HEIGHT / 2 + 8,
                                                                                "p50 / p95 per bucket", "tick"),
             value_axis(vs, CHART_LEFT, RIGHT, "{}")]
    metrics: list[tuple[str, Callable[[Bucket], float | None]]] = [("p95", lambda b: b.p95_ms),
                                                                   ("p50", lambda b: b.p50_ms)]
    for name, pick in metrics:
        points = [((scale.x(b.start) + scale.x(b.end)) / 2, _maybe(pick(b), vs)) for b in buckets]
        for segment in _segments(points):
            if len(segment) == 1:
                x, y = segment[0]
                parts.append(element("circle", {"class": f"dot {name}", "cx": x, "cy": y, "r": 2.5}))
            else:
                parts.append(polyline(segment, f"series {name}"))
        for bucket, (x, maybe_y) in zip(buckets, points, strict=True):
            value = pick(bucket)
            if maybe_y is not None and value is not None:
                parts.append(element("circle", {"class": f"hit {name}", "cx": x, "cy": maybe_y, "r": 3},
                                     title=f"{clock_label(bucket.start)}: {name} {num(value)} ms"))
    return "".join(parts)


def _maybe(value: float | None, vs: ValueScale) -> float | None:
    return None if value is None else vs.y(value)


QUEUE_SERIES = ("waiting", "delayed", "active", "failed")


def _queue(points: Sequence[QueuePoint], scale: TimeScale, y0: float) -> str:
    top = nice_top(max((max(p.waiting, p.delayed, p.active, p.failed) for p in points), default=0))
    vs = ValueScale(top=max(top, 1.0), y0=y0, height=QUEUE_HEIGHT)
    parts = [_lane_label(y0 + QUEUE_HEIGHT / 2, "queue depth (jobs)"), value_axis(vs, CHART_LEFT, RIGHT, "{}")]
    for name in QUEUE_SERIES:
        steps: list[tuple[float, float]] = [(scale.x(0.0), vs.y(0))]
        for point in points:
            x, y = scale.x(point.t), vs.y(float(getattr(point, name)))
            steps += [(x, steps[-1][1]), (x, y)]
        steps.append((scale.x(scale.end_s), steps[-1][1]))
        parts.append(polyline(steps, f"series q-{name}"))
    return "".join(parts)


LEGEND = (("fault-swatch", "fault window"), ("closed", "CLOSED"), ("half-open", "HALF_OPEN"), ("open", "OPEN"),
          ("healthy", "success > 99%"), ("warning", "95–99%"), ("critical", "< 95%"))


def _legend(y: float, queue: bool, background: bool = False) -> tuple[str, float]:
    """The legend, wrapped onto as many rows as it needs; returns it and the y of its last row."""
    items: list[tuple[str, str, bool]] = [(cls, label, True) for cls, label in LEGEND]
    if background:
        items.insert(1, ("fault-swatch background", "background condition", True))
    items += [("p50", "latency p50", False), ("p95", "latency p95", False)]
    if queue:
        items += [(f"q-{name}", f"jobs {name}", False) for name in QUEUE_SERIES]
    parts = []
    x = float(CHART_LEFT)
    for cls, label, swatch in items:
        width = (26 if swatch else 30) + len(label) * CHAR_WIDTH
        if x + width > CHART_WIDTH - CHART_RIGHT_PAD and x > CHART_LEFT:
            x, y = float(CHART_LEFT), y + 18
        if swatch:
            parts.append(element("rect", {"class": f"swatch {cls}", "x": x, "y": y - 9, "width": 12, "height": 10}))
            parts.append(text(x + 16, y, label, cls="tick"))
        else:
            parts.append(line(x, y - 4, x + 14, y - 4, f"series {cls}"))
            parts.append(text(x + 18, y, label, cls="tick"))
        x += width
    return "".join(parts), y


def timeline_svg(series: ScenarioSeries, wall: WallAnchors | None = None) -> str:
    """The scenario's timeline chart as one <svg> element; with `wall` (a real-mode run's wall stamps) the time
    axis reads wall-clock time (UTC)."""
    scale = TimeScale(end_s=series.end_s)
    fault_part, y = _faults(series, scale, TOP)
    breaker_part, y = _breakers(series, scale, y + 6)
    plot_top = TOP
    success_y = y + PANEL_GAP
    latency_y = success_y + SUCCESS_HEIGHT + PANEL_GAP
    bottom = latency_y + LATENCY_HEIGHT
    body = [fault_part, breaker_part, _success(series.buckets, scale, success_y),
            _latency(series.buckets, scale, latency_y)]
    if series.queue:
        queue_y = bottom + PANEL_GAP
        body.append(_queue(series.queue, scale, queue_y))
        bottom = queue_y + QUEUE_HEIGHT
    shading = [element("rect", {"class": "fault-window", "x": scale.x(w.start), "y": plot_top,
                                "width": max(scale.x(w.stop) - scale.x(w.start), 1.0), "height": bottom - plot_top,
                                "data_fault": w.fault_id, "data_start": w.start, "data_stop": w.stop})
               for w in series.faults if not w.background]
    if wall is None:
        axis = time_axis(scale, bottom, plot_top)
    else:
        started = wall.at(0.0).strftime("%Y-%m-%d %H:%M:%S")
        axis = time_axis(scale, bottom, plot_top, label=wall.label,
                         caption=f"wall-clock time (UTC, hh:mm:ss; scenario start {started})")
    background = any(w.background for w in series.faults)
    legend, legend_bottom = _legend(bottom + 56, bool(series.queue), background)
    height = legend_bottom + 14
    title = f"{series.name}: timeline ({num(series.bucket_s)} s buckets)"
    header = text(CHART_LEFT, 14, title, cls="chart-title")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{CHART_WIDTH}" height="{num(height)}" '
            f'viewBox="0 0 {CHART_WIDTH} {num(height)}" role="img" aria-label="{escape(title, quote=True)}">'
            + header + axis + "".join(body) + "".join(shading) + legend + "</svg>")
