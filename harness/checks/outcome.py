"""How an evaluator turns what it found into a `CheckResult`: `result` for a judged check, `nothing` for one
that matched nothing its meaning needs (DESIGN.md "Verdicts": a check that matched nothing never passes
silently). `nothing` fails with a detail starting "matched nothing: " unless the expectation says
`allow_empty: true`, and then passes saying so."""

from __future__ import annotations

from typing import Any

from harness.checks.result import CheckResult

EMPTY = "matched nothing: "


def result(expectation: Any, *, passed: bool, observed: float | int | str | None, unit: str, threshold: str,
           source: str, detail: str, matched: int | None) -> CheckResult:
    if isinstance(observed, float):
        observed = round(observed, 6)
    return CheckResult(
        name=expectation.label(), check=expectation.check, verdict="pass" if passed else "fail",
        observed=observed, unit=unit, threshold=threshold, source=source, detail=detail, matched=matched,
    )


def nothing(expectation: Any, *, why: str, unit: str, threshold: str, source: str) -> CheckResult:
    """The check matched nothing to judge (`why`): a failure, or a pass when the expectation allows it."""
    allowed = bool(getattr(expectation, "allow_empty", False))
    detail = EMPTY + why + (" (allowed: allow_empty is true)" if allowed else "")
    return result(expectation, passed=allowed, observed=None, unit=unit, threshold=threshold, source=source,
                  detail=detail, matched=0)
