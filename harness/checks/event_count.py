"""`check: events`: how many journal events of one kind (with given field values, in a time window) a run
produced, against a minimum and/or maximum. The generic "this must have happened" / "this must never
happen" of a scenario: a fallback that activated, a version conflict that was merged, no 429 from a vendor."""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.models import EventCount
from harness.checks.registry import evaluator, result
from harness.checks.result import CheckResult
from harness.durations import format_duration


@evaluator(EventCount)
def event_count(spec: EventCount, ctx: CheckContext, source: str) -> CheckResult:
    found = []
    for event in ctx.events:
        if getattr(event, "kind", None) != spec.kind:
            continue
        if any(getattr(event, field) != value for field, value in spec.where.items()):
            continue
        if spec.between is not None and not spec.between[0] <= event.t < spec.between[1]:
            continue
        found.append(event)
    bounds = f">= {spec.min}" if spec.max is None else (
        f"<= {spec.max}" if spec.min == 0 else f"{spec.min} to {spec.max}")
    where = ", ".join(f"{k}={v}" for k, v in sorted(spec.where.items()))
    window = (f" from {format_duration(spec.between[0])} to {format_duration(spec.between[1])}"
              if spec.between is not None else "")
    threshold = f"{bounds} {spec.kind} event(s)" + (f" with {where}" if where else "") + window
    passed = len(found) >= spec.min and (spec.max is None or len(found) <= spec.max)
    times = ", ".join(f"{e.t:g}s" for e in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    detail = f"{len(found)} found" + (f" at {times}" if found else "")
    return result(spec, passed=passed, observed=len(found), unit="events", threshold=threshold, source=source,
                  detail=detail)
