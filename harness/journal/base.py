"""The journal's base model and its time stamps (see `harness.journal`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Scalar = str | int | float | bool | None


class Event(BaseModel):
    """One journal event: `t` seconds of scenario time, a `kind`, typed fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    t: float


def stamp(seconds: float) -> float:
    """Round a scenario time the way the journal does (to the microsecond; never -0.0)."""
    return round(seconds, 6) + 0.0
