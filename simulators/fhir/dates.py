"""FHIR date, dateTime and instant values as half-open UTC ranges at their precision (FHIR R4 §3.1.1.4.2).

`date_range("2024-02")` is [2024-02-01, 2024-03-01); a value without a zone is UTC; anything that is
not a valid FHIR date is None. Search compares ranges with the spec's prefix rules.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

Range = tuple[datetime, datetime]

MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?"
                   r"(Z|[+-]\d{2}:\d{2})?)?)?)?")


def date_range(text: str) -> Range | None:
    """The half-open UTC range a FHIR date, dateTime or instant stands for at its precision; None if invalid."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        return _range(*match.groups())
    except (ValueError, OverflowError):
        return None


def _range(year: str, month: str | None, day: str | None, hour: str | None, minute: str | None,
           second: str | None, fraction: str | None, zone: str | None) -> Range:
    if month is None:
        start = datetime(int(year), 1, 1, tzinfo=UTC)
        return start, start.replace(year=start.year + 1) if start.year < 9999 else MAX_TIME
    if day is None:
        start = datetime(int(year), int(month), 1, tzinfo=UTC)
        if start.month < 12:
            return start, start.replace(month=start.month + 1)
        return start, start.replace(year=start.year + 1, month=1) if start.year < 9999 else MAX_TIME
    if hour is None:
        start = datetime(int(year), int(month), int(day), tzinfo=UTC)
        return start, min(start + timedelta(days=1), MAX_TIME) if start < MAX_TIME - timedelta(days=1) else MAX_TIME
    moment = datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}"
                                    f"{(fraction or '')[:7]}{'+00:00' if zone in (None, 'Z') else zone}")
    start = moment.astimezone(UTC)
    if second is None:
        step = timedelta(minutes=1)
    elif fraction is None:
        step = timedelta(seconds=1)
    else:
        step = timedelta(microseconds=10 ** max(0, 6 - len(fraction[1:])))
    return start, start + step
