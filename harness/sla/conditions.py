"""Thresholds as the catalogue writes them: `> 99%`, `< 500ms`, `> 5/min`, `<= 24h`, `== 0`.

A threshold is an operator and a quantity; the quantity's unit must fit the series it is compared with
(a ratio takes a percentage, a latency a duration, a rate a `/min` or `/s` figure, a count a bare
number), so a catalogue or a scenario that writes `> 500` for a latency is refused with a message that
says which unit was expected. Hand-written: the grammar is five operators and a dozen unit suffixes,
smaller than any expression library's setup.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

Unit = Literal["ratio", "ms", "s", "count", "per_min"]
Op = Literal["<", "<=", ">", ">=", "=="]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
}
_CONDITION = re.compile(r"^\s*(<=|>=|==|<|>)\s*(\d+(?:\.\d+)?)\s*([a-z%/]*)\s*$")
_DURATION_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PER_MIN = {"/s": 60.0, "/sec": 60.0, "/m": 1.0, "/min": 1.0, "/h": 1 / 60, "/hour": 1 / 60}
_EXPECTED = {
    "ratio": "a percentage like 99%",
    "ms": "a duration like 500ms or 2s",
    "s": "a duration like 90s, 2m or 24h",
    "count": "a bare number like 10",
    "per_min": "a rate like 5/min or 2/s",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """`op value` in the series' own unit (ratios as fractions, latencies in ms, durations in s,
    rates per minute); `text` is what the catalogue wrote."""

    op: Op
    value: float
    unit: Unit
    text: str

    def holds(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return self.text


def _quantity(number: float, suffix: str, unit: Unit) -> float | None:
    """`number suffix` in `unit`, or None when the suffix does not fit the unit."""
    if unit == "ratio":
        return number / 100.0 if suffix == "%" else None
    if unit == "count":
        return number if suffix == "" else None
    if unit == "per_min":
        return number * _PER_MIN[suffix] if suffix in _PER_MIN else None
    if suffix not in _DURATION_S:
        return None
    seconds = number * _DURATION_S[suffix]
    return seconds * 1000.0 if unit == "ms" else seconds


def parse_condition(text: str, unit: Unit) -> Condition:
    """Parse `text` for a series measured in `unit`; ValueError with the expected form otherwise."""
    match = _CONDITION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a threshold like '> 10' or '< 95%' (an operator <, <=, >, >=, == and "
                         f"{_EXPECTED[unit]}), got {text!r}")
    op, number, suffix = match.group(1), float(match.group(2)), match.group(3)
    value = _quantity(number, suffix, unit)
    if value is None:
        raise ValueError(f"threshold {text!r} has the wrong unit: this series is measured in {unit}, "
                         f"so write {_EXPECTED[unit]}")
    return Condition(op=cast(Op, op), value=value, unit=unit, text=text.strip())


def format_value(value: float | None, unit: Unit) -> str:
    if value is None:
        return "no data"
    if unit == "ratio":
        return f"{value * 100:.4g}%"
    if unit == "ms":
        return f"{value:.4g}ms"
    if unit == "s":
        return f"{value:.4g}s"
    if unit == "per_min":
        return f"{value:.4g}/min"
    return f"{value:.4g}"
