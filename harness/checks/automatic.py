"""Checks the lab makes on every run without a scenario asking: `no_unexpected_errors`.

Every failure the integration raises is a typed, documented class (`integrations.errors`), each mapped to
an action as runbook 000_030ea53f0735abf7.txt §4's "Common Error Codes" does; the runner journals anything
else as `Unexpected<Name>`, a bug in the system under test (`harness.runner`) with no action an operator
could take. Such an error fails the run whatever the scenario's own checks say (DESIGN.md "Verdicts";
issue 13, "every failure attributed": "any `Unexpected*` in a run fails it with a check that says so").

The check reads every event of the system under test that carries an error: operations' `error`, and the
`error`, `reason` and `reasons` fields of requests, retries, tokens, credentials, jobs, the queue, syncs and
failover. The lab's own failures (`fault.error`, `step.error`, `lab.*`) are not the system's and are left
to the lab's INCONCLUSIVE verdict. A typed class whose name starts with "Unexpected" (`UnexpectedStatus`, a
status the connector has no other type for) is typed, not unexpected. Matched: the operations and the
other error-carrying events read; a journal without an operation matched nothing.
"""

from __future__ import annotations

from typing import Literal

from harness.checks.base import CheckBase
from harness.checks.context import CheckContext
from harness.checks.event_domains import is_unexpected
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.journal import OperationEvent

#: 000 §4's "Common Error Codes" give every failure an action; an untyped exception has none (DESIGN.md "Verdicts").
SOURCE = "000_030ea53f0735abf7.txt §4 (Common Error Codes: every failure a known class with its action)"
_LAB_OWN = ("fault.error", "step.error")
_FIELDS = ("error", "reason", "reasons")
_SHOWN = 5


class NoUnexpectedErrors(CheckBase):
    """No event of the run carries an `Unexpected*` error. Not written in scenarios: `evaluate_all` adds it."""

    check: Literal["no_unexpected_errors"] = "no_unexpected_errors"


def no_unexpected_errors(ctx: CheckContext) -> CheckResult:
    spec = NoUnexpectedErrors()
    threshold = "0 Unexpected* errors (every failure a typed class of the integration)"
    found: dict[str, int] = {}
    where: dict[str, str] = {}
    others = 0
    for event in ctx.events:
        kind = str(getattr(event, "kind", ""))
        carries = isinstance(event, OperationEvent) or any(getattr(event, f, None) for f in _FIELDS)
        if kind in _LAB_OWN or kind.startswith("lab.") or not carries:
            continue
        others += not isinstance(event, OperationEvent)
        for field in _FIELDS:
            value = getattr(event, field, None)
            for name in (value if isinstance(value, tuple) else (value,)):
                if isinstance(name, str) and is_unexpected(name):
                    found[name] = found.get(name, 0) + 1
                    where.setdefault(name, f"first in {kind} at {event.t:g}s")
    operations = len(ctx.operations)
    if not operations:
        return nothing(spec, why="no operation in the journal", unit="errors", threshold=threshold, source=SOURCE)
    matched = operations + others
    if not found:
        return result(spec, passed=True, observed=0, unit="errors", threshold=threshold, source=SOURCE,
                      matched=matched, detail=f"no Unexpected* error in {operations} operation(s) and {others} "
                                              "other event(s) with an error or reason")
    names = sorted(found, key=lambda n: (-found[n], n))
    shown = "; ".join(f"{n} x{found[n]} ({where[n]})" for n in names[:_SHOWN])
    more = f"; {len(names) - _SHOWN} more class(es)" if len(names) > _SHOWN else ""
    return result(spec, passed=False, observed=sum(found.values()), unit="errors", threshold=threshold,
                  source=SOURCE, matched=matched,
                  detail=f"untyped exceptions in the system under test: {shown}{more}")


def automatic_checks(ctx: CheckContext) -> list[CheckResult]:
    """The checks every run gets, after its scenario's own."""
    return [no_unexpected_errors(ctx)]
