"""Text shared by the report writers: how a check's observed value reads."""

from __future__ import annotations

from harness.checks.result import Scalar


def observed_text(observed: Scalar, unit: str) -> str:
    """A check's observed value with its unit: a ratio as a percentage, `none` for nothing observed."""
    if observed is None:
        return "none"
    if isinstance(observed, float) and unit == "ratio":
        return f"{observed * 100:.2f}%"
    if isinstance(observed, float):
        return f"{observed:g} {unit}"
    return f"{observed} {unit}"
