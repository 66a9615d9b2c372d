"""The journal's base model and its time stamps (see `harness.journal`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Scalar = str | int | float | bool | None


class Event(BaseModel):
    """One journal event: `t` seconds of scenario time, a `kind`, typed fields; in real mode also `wall`, the
    real wall-clock time it was journaled (ISO-8601 UTC, milliseconds: `2026-12-03T18:12:55.123Z`), to line a
    run up with the operator's dashboards. A virtual journal has no `wall` (the field is left out of its JSON
    lines, which stay byte-identical run to run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    t: float
    wall: str | None = Field(default=None, description="real mode only: wall-clock time (ISO-8601 UTC, ms)")

    @model_serializer(mode="wrap")
    def _without_absent_wall(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `"wall": null`: a virtual event dumps (and its journal line reads) exactly as before the field."""
        data: dict[str, Any] = handler(self)
        if data.get("wall", "") is None:
            del data["wall"]
        return data


#: Fields every event has (not a kind's own fields: `events.where` and the reference page leave them out).
BASE_FIELDS = frozenset({"t", "kind", "wall"})


def stamp(seconds: float) -> float:
    """Round a scenario time the way the journal does (to the microsecond; never -0.0)."""
    return round(seconds, 6) + 0.0


def wall_stamp(moment: datetime) -> str:
    """An aware datetime as the journal's `wall` (ISO-8601 UTC with milliseconds and a Z)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
