"""`check: events`: how many journal events of one kind (with given field values, in a time window) a run
produced, against a minimum and/or maximum. The generic "this must have happened" / "this must never
happen" of a scenario: a fallback that activated, a version conflict that was merged, no 429 from a vendor.

Matched: the events found. A `where` that could never match is refused when the file is loaded
(`event_domains`), so `max: 0` passes on a real absence, not on a typo. With `min`, none found fails with
"matched nothing"; so does a window anchored to a fault that never came."""

from __future__ import annotations

from harness.checks.anchors import describe_point
from harness.checks.context import CheckContext
from harness.checks.models import EventCount
from harness.checks.outcome import EMPTY, result
from harness.checks.result import CheckResult


def event_count(spec: EventCount, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the events found. Nothing (with `min`): none found, or an anchor that never came."""
    bounds = f">= {spec.min}" if spec.max is None else (
        f"<= {spec.max}" if spec.min == 0 else f"{spec.min} to {spec.max}")
    where = ", ".join(f"{k}={v}" for k, v in sorted(spec.where.items()))
    window_text = (f" from {describe_point(spec.between[0])} to {describe_point(spec.between[1])}"
                   if spec.between is not None else "")
    threshold = f"{bounds} {spec.kind} event(s)" + (f" with {where}" if where else "") + window_text
    window, why = ctx.window(spec.between)
    if window is None:
        return result(spec, passed=False, observed=None, unit="events", threshold=threshold, source=source,
                      detail=EMPTY + why, matched=0)
    begin, end = window
    found = [e for e in ctx.events if getattr(e, "kind", None) == spec.kind and begin <= e.t < end
             and all(getattr(e, field) == value for field, value in spec.where.items())]
    passed = len(found) >= spec.min and (spec.max is None or len(found) <= spec.max)
    times = ", ".join(f"{e.t:g}s" for e in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    detail = f"{len(found)} found" + (f" at {times}" if found else "")
    if not found and spec.min > 0:
        detail = f"{EMPTY}no {spec.kind} event" + (f" with {where}" if where else "") + window_text
    return result(spec, passed=passed, observed=len(found), unit="events", threshold=threshold, source=source,
                  detail=detail, matched=len(found))
