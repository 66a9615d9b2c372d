"""Durations and rates as scenario files write them: `90s`, `2m`, `1h30m`, `500ms`, `2/s`, `120/m`.

A bare number is seconds (durations) or per second (rates). Every value is a finite number in a range the lab
can honour, refused at validate time otherwise:

- a duration is in [0, `MAX_DURATION_S`] (7 days of scenario time): NaN, infinity, `1e308` and
  `"111…1h"` are refused;
- a rate is in (0, `MAX_RATE_PER_S`] (1000 events per second): a workload stream beyond it is a load test
  (`ehrlab load`), not a scenario;
- `FiniteFloat` is any other float a scenario takes (a probability, a percentile): NaN and infinity refused,
  each field adding its own range.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

#: The longest duration a scenario may write anywhere (7 days of scenario time).
MAX_DURATION_S = 7 * 24 * 3600.0
#: The highest rate a scenario may write (events per second).
MAX_RATE_PER_S = 1000.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")  # not `nan`, `inf` nor `1_000`, which float() takes
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|sec|second|min|minute|hour)\s*$")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
               "h": 3600.0, "hour": 3600.0}


def _finite(number: float, shown: str, what: str) -> float:
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{what} must be a finite number, got {shown}")
    return number


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like `1h30m`, in [0, MAX_DURATION_S]; raises ValueError on anything
    else."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 2m or 1h30m, not a boolean")
    if isinstance(value, float):
        seconds = _finite(value, _short(value), "a duration")
    elif isinstance(value, int):
        seconds = _int_seconds(value)
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
            if not _NUMBER.match(text):
                raise ValueError(f"expected a duration like 90s, 2m, 1h30m or 500ms, got {_short(value)}")
            seconds = float(text)  # digits only: a string too long for a float is inf, refused below as too long
    else:
        raise ValueError(f"expected a duration like 90s, 2m or 1h30m, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {_short(value)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration must be at most 7 days ({MAX_DURATION_S:g}s), got {_short(value)}")
    return seconds


def _int_seconds(value: int) -> float:
    if value > MAX_DURATION_S:  # float() of a huge int would overflow or lose its meaning
        raise ValueError(f"duration must be at most 7 days ({MAX_DURATION_S:g}s), got {_short(value)}")
    return float(value)


def _short(value: object) -> str:
    """`value` for a message, cut to a readable length (a hostile file may hold a megabyte of digits)."""
    if isinstance(value, int) and value.bit_length() > 128:  # str() of a long int is slow, past 4300 digits refused
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…({len(text)} characters)"


def parse_rate(value: object) -> float:
    """Events per second from a number or a string like `2/s` or `120/m`, in (0, MAX_RATE_PER_S]."""
    if isinstance(value, bool):
        raise ValueError("expected a rate like 2/s or 120/m, not a boolean")
    if isinstance(value, int) and value > MAX_RATE_PER_S:
        raise ValueError(f"rate must be at most {MAX_RATE_PER_S:g}/s, got {_short(value)}")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match is None:
            if not _NUMBER.match(value.strip()):
                raise ValueError(f"expected a rate like 2/s or 120/m, got {_short(value)}")
            rate = float(value)
        else:
            rate = float(match.group(1)) / _RATE_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a rate like 2/s or 120/m, got {type(value).__name__}")
    _finite(rate, _short(value), "a rate")
    if rate <= 0:
        raise ValueError(f"rate must be positive: {_short(value)}")
    if rate > MAX_RATE_PER_S:
        raise ValueError(f"rate must be at most {MAX_RATE_PER_S:g}/s, got {_short(value)}")
    return rate


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds < 120 or seconds % 60:
        return f"{seconds:g}s"
    return f"{seconds / 60:g}m"


#: Seconds, written in YAML as `90s`, `2m`, `1h`, `500ms` or a number; in [0, 7 days].
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(lambda v: v, return_type=float)]
#: Per second, written as `2/s`, `120/m` or a number; in (0, 1000/s].
Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(lambda v: v, return_type=float)]
#: Any other float a scenario takes: NaN and infinity refused ("Input should be a finite number").
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
