"""SVG primitives for the report's charts: escaped elements, fixed-precision numbers, the time scale and nice
axis ticks. Hand-written rather than a plotting library (matplotlib, plotly): the output must be small,
inline, byte-for-byte deterministic and readable without JavaScript, and no heavy dependency is wanted for
a few rectangles and polylines."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

CHART_WIDTH = 1200
CHART_LEFT = 170  # room for lane labels and y-axis values
CHART_RIGHT = 20
PLOT_WIDTH = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
CHAR_WIDTH = 6.2  # approximate width of one character at font-size 11, for label layout


def num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros: stable text for the same value."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def attrs(values: dict[str, str | float | int]) -> str:
    parts = []
    for key, value in values.items():
        text = num(float(value)) if isinstance(value, float | int) and not isinstance(value, bool) else str(value)
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(text, quote=True)}"')
    return " ".join(parts)


def element(tag: str, values: dict[str, str | float | int], body: str = "", title: str | None = None) -> str:
    inner = (f"<title>{escape(title)}</title>" if title else "") + body
    if inner:
        return f"<{tag} {attrs(values)}>{inner}</{tag}>"
    return f"<{tag} {attrs(values)}/>"


def text(x: float, y: float, content: str, *, cls: str = "", anchor: str = "start") -> str:
    values: dict[str, str | float | int] = {"x": x, "y": y}
    if cls:
        values["class"] = cls
    if anchor != "start":
        values["text_anchor"] = anchor
    return f"<text {attrs(values)}>{escape(content)}</text>"


def line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return element("line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "class": cls})


def polyline(points: Sequence[tuple[float, float]], cls: str) -> str:
    coords = " ".join(f"{num(x)},{num(y)}" for x, y in points)
    return element("polyline", {"points": coords, "class": cls})


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Scenario seconds [0, end_s] onto the plot's x range."""

    end_s: float
    left: float = CHART_LEFT
    width: float = PLOT_WIDTH

    def x(self, t: float) -> float:
        clamped = min(max(t, 0.0), self.end_s)
        return round(self.left + clamped / self.end_s * self.width, 2)


@dataclass(frozen=True, slots=True)
class ValueScale:
    """Values [0, top] onto a panel's y range [y0 + height, y0] (up is more)."""

    top: float
    y0: float
    height: float

    def y(self, value: float) -> float:
        clamped = min(max(value, 0.0), self.top)
        return round(self.y0 + self.height - clamped / self.top * self.height, 2)


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10 * power


def time_ticks(end_s: float) -> list[float]:
    """Tick positions in seconds: 5 to 12 of them, at a round step."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if end_s / step <= 12:
            return [float(i * step) for i in range(int(end_s // step) + 1)]
    return [0.0, end_s]


def clock_label(seconds: float) -> str:
    """Scenario time as m:ss (h:mm:ss past an hour)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_axis(scale: TimeScale, y: float, grid_top: float, label: Callable[[float], str] = clock_label,
              caption: str = "scenario time (m:ss)") -> str:
    """The x axis: ticks at round scenario times, labelled by `label` (scenario time by default; wall-clock
    time in real mode)."""
    parts = [line(scale.left, y, scale.left + scale.width, y, "axis")]
    for tick in time_ticks(scale.end_s):
        x = scale.x(tick)
        parts.append(line(x, grid_top, x, y, "grid"))
        parts.append(line(x, y, x, y + 4, "axis"))
        shown = label(tick)
        fits = x + len(shown) * CHAR_WIDTH / 2 <= scale.left + scale.width + CHART_RIGHT
        parts.append(text(x, y + 16, shown, cls="tick", anchor="middle" if fits else "end"))
    parts.append(text(scale.left + scale.width, y + 32, caption, cls="tick axis-caption", anchor="end"))
    return "".join(parts)


def value_axis(scale: ValueScale, left: float, right: float, fmt: str) -> str:
    """Horizontal grid lines at round values, labelled at the left of the plot; `fmt` has one `{}` for the
    value."""
    leading = scale.top / 10.0 ** math.floor(math.log10(scale.top))
    ticks = 4 if abs(leading - 2.0) < 1e-9 else 5
    parts = []
    for i in range(ticks + 1):
        value = scale.top * i / ticks
        y = scale.y(value)
        parts.append(line(left, y, right, y, "grid"))
        parts.append(text(left - 6, y + 4, fmt.format(num(value)), cls="tick", anchor="end"))
    return "".join(parts)
