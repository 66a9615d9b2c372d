"""What an invariant returns before it becomes a `CheckResult`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    observed: int | float | None
    unit: str
    threshold: str
    detail: str
    matched: int | None = None  # what the invariant judged (its docstring says what it counts)
    empty: str | None = None  # there was nothing to judge, and why: "matched nothing" unless allow_empty
