"""Durations and rates as scenario files write them: `90s`, `2m`, `1h30m`, `500ms`, `2/s`, `120/m`.

A bare number is seconds (durations) or per second (rates). Negative values are rejected.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|sec|second|min|minute|hour)\s*$")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
               "h": 3600.0, "hour": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like `1h30m`; raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 2m or 1h30m, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError(f"duration must not be negative: {value!r}")
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"expected a duration like 90s, 2m, 1h30m or 500ms, got {value!r}") from None
    else:
        raise ValueError(f"expected a duration like 90s, 2m or 1h30m, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {value!r}")
    return seconds


def parse_rate(value: object) -> float:
    """Events per second from a number or a string like `2/s` or `120/m`."""
    if isinstance(value, bool):
        raise ValueError("expected a rate like 2/s or 120/m, not a boolean")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match is None:
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"expected a rate like 2/s or 120/m, got {value!r}") from None
        else:
            rate = float(match.group(1)) / _RATE_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a rate like 2/s or 120/m, got {type(value).__name__}")
    if rate <= 0:
        raise ValueError(f"rate must be positive: {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds < 120 or seconds % 60:
        return f"{seconds:g}s"
    return f"{seconds / 60:g}m"


#: Seconds, written in YAML as `90s`, `2m`, `1h`, `500ms` or a number.
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(lambda v: v, return_type=float)]
#: Per second, written as `2/s`, `120/m` or a number.
Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(lambda v: v, return_type=float)]
