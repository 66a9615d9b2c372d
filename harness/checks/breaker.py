"""Breaker checks, runbook 000_030ea53f0735abf7.txt §2: under an outage the breaker opens, it goes
HALF_OPEN 60 s after opening (on the first call after the wait, as resilience4j does by default), and it
closes again once the provider has recovered.

Operator transitions (`manual`: resilience4j's force-open, disable, reset) are not the breaker's own
doing: a manual OPEN does not count as "opened on the fault", and a manual move out of OPEN is not a
late or wrong half-open. FORCED_OPEN and DISABLED at the end of a run fail `breaker_closes`."""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.models import BreakerCloses, BreakerHalfOpens, BreakerOpens, BreakerStaysClosed
from harness.checks.registry import evaluator, result
from harness.checks.result import CheckResult
from harness.durations import format_duration


@evaluator(BreakerOpens)
def breaker_opens(spec: BreakerOpens, ctx: CheckContext, source: str) -> CheckResult:
    threshold = f"<= {format_duration(spec.within)} after the first fault on {spec.vendor}"
    faults = ctx.faults_on(spec.vendor)
    if not faults:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"no fault targeted {spec.vendor}, so there is nothing to open on")
    first = min(f.start for f in faults)
    opened = [e.t for e in ctx.transitions(spec.vendor) if e.to_state == "OPEN" and not e.manual and e.t >= first]
    if not opened:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"the breaker never opened after the fault at {first:g}s")
    delay = opened[0] - first
    return result(spec, passed=delay <= spec.within, observed=delay, unit="s", threshold=threshold,
                  source=source, detail=f"opened at {opened[0]:g}s, {delay:g}s after the fault started")


@evaluator(BreakerHalfOpens)
def breaker_half_opens(spec: BreakerHalfOpens, ctx: CheckContext, source: str) -> CheckResult:
    threshold = f"{format_duration(spec.after)} ± {format_duration(spec.tolerance)} after each opening"
    transitions = ctx.transitions(spec.vendor)
    delays: list[float] = []
    problems: list[str] = []
    for i, event in enumerate(transitions):
        if event.to_state != "OPEN":
            continue
        following = transitions[i + 1] if i + 1 < len(transitions) else None
        if following is None:
            if event.t + spec.after + spec.tolerance <= ctx.duration:
                problems.append(f"opened at {event.t:g}s and never left OPEN")
            continue
        if following.manual:
            continue  # an operator moved it (force_open, reset ...) before the wait was over: not a timing fault
        delay = following.t - event.t
        delays.append(delay)
        if following.to_state != "HALF_OPEN":
            problems.append(f"opened at {event.t:g}s, then went to {following.to_state} instead of HALF_OPEN")
        elif delay < spec.after - spec.tolerance or following.t > _latest_half_open(spec, ctx, event.t):
            problems.append(f"opened at {event.t:g}s, half-open {delay:g}s later")
    if not delays and not problems:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail="the breaker never opened (long enough before the end) to half-open")
    worst = max(delays, key=lambda d: abs(d - spec.after)) if delays else None
    detail = "; ".join(problems) if problems else f"{len(delays)} opening(s), each half-open after {spec.after:g}s"
    return result(spec, passed=not problems, observed=worst, unit="s", threshold=threshold, source=source,
                  detail=detail)


def _latest_half_open(spec: BreakerHalfOpens, ctx: CheckContext, opened: float) -> float:
    """The latest a breaker opened at `opened` may go HALF_OPEN. resilience4j's default (no automatic
    transition) moves OPEN -> HALF_OPEN on the first call after the wait, so with no call due at
    `opened + after` the transition waits for the next operation on the vendor: late by the traffic's gap,
    not by the breaker's fault."""
    due = opened + spec.after
    next_call = min((op.started for op in ctx.operations_on(spec.vendor) if op.started >= due), default=due)
    return max(due, next_call) + spec.tolerance


@evaluator(BreakerCloses)
def breaker_closes(spec: BreakerCloses, ctx: CheckContext, source: str) -> CheckResult:
    threshold = f"CLOSED within {format_duration(spec.within)} after the last fault on {spec.vendor} ends"
    faults = ctx.faults_on(spec.vendor)
    if not faults:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"no fault targeted {spec.vendor}")
    end = max(f.stop for f in faults)
    transitions = ctx.transitions(spec.vendor)
    final = transitions[-1].to_state if transitions else "CLOSED"
    if final != "CLOSED":
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"the breaker was still {final} when the scenario ended")
    closed_at = transitions[-1].t if transitions else end
    delay = max(0.0, closed_at - end)
    return result(spec, passed=delay <= spec.within, observed=delay, unit="s", threshold=threshold,
                  source=source, detail=f"closed for good at {closed_at:g}s; the fault ended at {end:g}s")


@evaluator(BreakerStaysClosed)
def breaker_stays_closed(spec: BreakerStaysClosed, ctx: CheckContext, source: str) -> CheckResult:
    openings = [e.t for e in ctx.transitions(spec.vendor) if e.to_state == "OPEN"]
    detail = "never opened" if not openings else f"opened at {', '.join(f'{t:g}s' for t in openings[:5])}"
    return result(spec, passed=not openings, observed=len(openings), unit="openings", threshold="0 openings",
                  source=source, detail=detail)
