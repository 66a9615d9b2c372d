"""Breaker checks, runbook 000_030ea53f0735abf7.txt §2: under an outage the breaker opens, it goes
HALF_OPEN 60 s after opening (on the first call after the wait, as resilience4j does by default), and it
closes again once the provider has recovered.

Each check is about one breaker, by its journal name (`spec.breaker_name()`: `epic`, or a failover system's
`epic_prod`); its faults are those on the breaker's vendor. Each reports `matched`: the breaker's
transitions (`breaker_half_opens`: the openings judged; `breaker_stays_closed`: transitions plus the
requests it let through). A breaker that made no transition and let no request through cannot be judged
by any of them: "matched nothing".

Operator transitions (`manual`: resilience4j's force-open, disable, reset) are not the breaker's own
doing: a manual OPEN does not count as "opened on the fault", and a manual move out of OPEN is not a
late or wrong half-open. FORCED_OPEN and DISABLED at the end of a run fail `breaker_closes`."""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.models import BreakerCloses, BreakerHalfOpens, BreakerOpens, BreakerStaysClosed
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.durations import format_duration


def breaker_opens(spec: BreakerOpens, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the breaker's transitions. Nothing: an unseen breaker, or no (non-background / named) fault."""
    breaker = spec.breaker_name()
    vendor = ctx.breaker_vendor(breaker)
    anchor = f"fault {spec.fault}" if spec.fault else f"the first fault on {vendor}"
    threshold = f"{breaker} OPEN <= {format_duration(spec.within)} after {anchor} starts"
    picked = ctx.pick(vendor, spec.fault, which="first")
    why = ctx.unseen(breaker) or ("" if picked.fault else picked.why + ", so there is nothing to open on")
    if why or picked.fault is None:
        return nothing(spec, why=why, unit="s", threshold=threshold, source=source)
    first = picked.fault.start
    transitions = ctx.transitions(breaker)
    opened = [e.t for e in transitions if e.to_state == "OPEN" and not e.manual and e.t >= first]
    if not opened:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"{breaker} never opened after {picked.fault.label()} started at {first:g}s",
                      matched=len(transitions))
    delay = opened[0] - first
    return result(spec, passed=delay <= spec.within, observed=delay, unit="s", threshold=threshold,
                  source=source, matched=len(transitions),
                  detail=f"{breaker} opened at {opened[0]:g}s, {delay:g}s after {picked.fault.label()} started")


def breaker_half_opens(spec: BreakerHalfOpens, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the openings judged. Nothing: an unseen breaker, or one that never opened in time to judge."""
    breaker = spec.breaker_name()
    threshold = (f"{breaker} HALF_OPEN {format_duration(spec.after)} ± {format_duration(spec.tolerance)} "
                 "after each opening")
    unseen = ctx.unseen(breaker)
    if unseen:
        return nothing(spec, why=unseen, unit="s", threshold=threshold, source=source)
    transitions = ctx.transitions(breaker)
    delays: list[float] = []
    problems: list[str] = []
    judged = 0
    for i, event in enumerate(transitions):
        if event.to_state != "OPEN":
            continue
        following = transitions[i + 1] if i + 1 < len(transitions) else None
        if following is None:
            if event.t + spec.after + spec.tolerance <= ctx.duration:
                judged += 1
                problems.append(f"opened at {event.t:g}s and never left OPEN")
            continue
        if following.manual:
            continue  # an operator moved it (force_open, reset ...) before the wait was over: not a timing fault
        judged += 1
        delay = following.t - event.t
        delays.append(delay)
        if following.to_state != "HALF_OPEN":
            problems.append(f"opened at {event.t:g}s, then went to {following.to_state} instead of HALF_OPEN")
        elif delay < spec.after - spec.tolerance or following.t > _latest_half_open(spec, ctx, event.t):
            problems.append(f"opened at {event.t:g}s, half-open {delay:g}s later")
    if not judged:
        return nothing(spec, why=f"{breaker} never opened (long enough before the end) to half-open", unit="s",
                       threshold=threshold, source=source)
    worst = max(delays, key=lambda d: abs(d - spec.after)) if delays else None
    detail = "; ".join(problems) if problems else f"{len(delays)} opening(s), each half-open after {spec.after:g}s"
    return result(spec, passed=not problems, observed=worst, unit="s", threshold=threshold, source=source,
                  detail=detail, matched=judged)


def _latest_half_open(spec: BreakerHalfOpens, ctx: CheckContext, opened: float) -> float:
    """The latest a breaker opened at `opened` may go HALF_OPEN. resilience4j's default (no automatic
    transition) moves OPEN -> HALF_OPEN on the first call after the wait, so with no call due at
    `opened + after` the transition waits for the next operation on the vendor: late by the traffic's gap,
    not by the breaker's fault."""
    due = opened + spec.after
    vendor = ctx.breaker_vendor(spec.breaker_name())
    next_call = min((op.started for op in ctx.operations_on(vendor) if op.started >= due), default=due)
    return max(due, next_call) + spec.tolerance


def breaker_closes(spec: BreakerCloses, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the breaker's transitions. Nothing: an unseen breaker, no fault, one never ended, no transition."""
    breaker = spec.breaker_name()
    vendor = ctx.breaker_vendor(breaker)
    anchor = f"fault {spec.fault}" if spec.fault else f"the last fault on {vendor}"
    threshold = f"{breaker} CLOSED within {format_duration(spec.within)} after {anchor} ends"
    end, why = ctx.after_end(ctx.pick(vendor, spec.fault, which="last"))
    transitions = ctx.transitions(breaker)
    why = ctx.unseen(breaker) or why or ("" if transitions else (
        f"{breaker} never left CLOSED ({ctx.breaker_calls(breaker)} request(s)), so there is nothing to close "
        "again: use breaker_stays_closed"))
    if why or end is None:
        return nothing(spec, why=why, unit="s", threshold=threshold, source=source)
    final = transitions[-1]
    if final.to_state != "CLOSED":
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"{breaker} was still {final.to_state} when the scenario ended", matched=len(transitions))
    delay = max(0.0, final.t - end)
    return result(spec, passed=delay <= spec.within, observed=delay, unit="s", threshold=threshold,
                  source=source, matched=len(transitions),
                  detail=f"{breaker} closed for good at {final.t:g}s; the fault ended at {end:g}s")


def breaker_stays_closed(spec: BreakerStaysClosed, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the breaker's transitions plus the requests it let through. Nothing: an unseen breaker."""
    breaker = spec.breaker_name()
    threshold = f"0 openings of {breaker}"
    unseen = ctx.unseen(breaker)
    if unseen:
        return nothing(spec, why=unseen, unit="openings", threshold=threshold, source=source)
    transitions = ctx.transitions(breaker)
    openings = [e.t for e in transitions if e.to_state == "OPEN"]
    detail = (f"never opened ({ctx.breaker_calls(breaker)} request(s))" if not openings
              else f"opened at {', '.join(f'{t:g}s' for t in openings[:5])}")
    return result(spec, passed=not openings, observed=len(openings), unit="openings", threshold=threshold,
                  source=source, detail=detail, matched=len(transitions) + ctx.breaker_calls(breaker))
