"""The root cause of a scenario's incident, from its journal: each injected fault by its `name` (from
`fault.start`) and the components of the integration that amplified it.

For an incident fault on vendor V, between its start and its stop (the end of the scenario if it never
stopped), the amplifiers looked for, in this order:

- the breaker: V's breaker (named V, or V_<suffix> as a failover setup names them: `epic_prod`) went OPEN on
  its own (not an operator's transition) up to ATTRIBUTION_SLACK_S after the fault stopped, with the failure
  rate and the number of calls of the window that tripped it (`breaker.transition`); how often it re-opened
  from HALF_OPEN and how many operations it refused (`CircuitOpen`);
- retries: requests to V (`request` events, `attempt` > 1 being retries) at least RETRY_AMPLIFICATION times
  the first attempts: "retries tripled the calls to epic";
- the token cache: TOKEN_STORM or more token requests to V (`token.issued` / `token.refreshed` /
  `token.failed`) within TOKEN_STORM_WINDOW_S during the fault;
- the client-side rate limiter: calls to V held back or refused (`request.throttled`);
- failover: reads no system could serve whose primary is V (`failover.exhausted`).

Background faults (`background: true`) are conditions of the whole run, never a cause: they are listed apart
("under a background condition"), and never named as the root cause while an incident fault exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.journal import (
    BreakerEvent,
    Event,
    FailoverExhaustedEvent,
    OperationEvent,
    RequestEvent,
    RetryEvent,
    ThrottledEvent,
    TokenFailedEvent,
    TokenIssuedEvent,
    TokenRefreshedEvent,
)
from harness.report.series import FaultWindow
from harness.report.timeline import fault_params, scenario_clock

ATTRIBUTION_SLACK_S = 10.0  # a breaker's window still holds the fault's failures just after it stops
RETRY_AMPLIFICATION = 1.5  # requests per first attempt from which retries count as amplifying the fault
TOKEN_STORM = 3  # token requests to one vendor within TOKEN_STORM_WINDOW_S from which the cache amplifies
TOKEN_STORM_WINDOW_S = 60.0  # tokens live minutes and are refreshed 60 s before expiry (002 §2.1): 3 in a minute
#                              is a storm, 3 over a whole run is routine
_MULTIPLIED = {2: "doubled", 3: "tripled", 4: "quadrupled"}


@dataclass(frozen=True, slots=True)
class Amplifier:
    component: str  # "breaker", "retry", "token", "throttle", "failover"
    t: float  # when it first showed
    text: str  # a sentence fragment: "the breaker epic_prod opened at a 30 % failure rate after 20 calls ..."


@dataclass(frozen=True, slots=True)
class FaultCause:
    fault: FaultWindow
    amplifiers: tuple[Amplifier, ...]


@dataclass(frozen=True, slots=True)
class RootCause:
    causes: tuple[FaultCause, ...]  # the incident faults, in start order
    conditions: tuple[FaultWindow, ...]  # the background faults: conditions, not causes


def belongs(breaker: str, vendor: str) -> bool:
    """A breaker guards a vendor when it is named after it (`epic`, `epic_prod`, `epic-secondary`)."""
    return breaker == vendor or breaker.startswith((f"{vendor}_", f"{vendor}-", f"{vendor}."))


def fault_words(window: FaultWindow) -> str:
    """`"name" (f1): kind on target (params)`."""
    params = fault_params(dict(window.params))
    return f'"{window.title}" ({window.fault_id}): {window.fault} on {window.target}' + (
        f" ({params})" if params else "")


def fault_span(window: FaultWindow) -> str:
    end = scenario_clock(window.stop) if window.stopped else "the end (never stopped)"
    return f"{scenario_clock(window.start)} to {end}"


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f} %"


def _breaker(w: FaultWindow, events: Sequence[Event]) -> Amplifier | None:
    hi = w.stop + ATTRIBUTION_SLACK_S
    opened = [e for e in events if isinstance(e, BreakerEvent) and e.to_state == "OPEN" and not e.manual
              and belongs(e.breaker, w.target) and w.start <= e.t <= hi]
    if not opened:
        return None
    first = opened[0]
    if first.slow_call_rate and (first.failure_rate is None or first.slow_call_rate > first.failure_rate):
        why = f" at a {_percent(first.slow_call_rate)} slow-call rate"
    elif first.failure_rate is not None:
        why = f" at a {_percent(first.failure_rate)} failure rate"
    else:
        why = ""
    again = sum(1 for e in opened[1:] if e.breaker == first.breaker and e.from_state == "HALF_OPEN")
    refused = sum(1 for e in events if isinstance(e, OperationEvent) and e.error == "CircuitOpen"
                  and e.vendor == w.target and w.start <= e.t <= hi)
    extra = [f"re-opened {again} time(s) from HALF_OPEN"] if again else []
    extra += [f"{refused} operation(s) refused while it was OPEN"] if refused else []
    return Amplifier("breaker", first.t, f"the breaker {first.breaker} opened{why} after {first.calls} calls at "
                                         f"{scenario_clock(first.t)}" + (f" ({'; '.join(extra)})" if extra else ""))


def _retries(w: FaultWindow, events: Sequence[Event]) -> Amplifier | None:
    requests = [e for e in events if isinstance(e, RequestEvent) and e.vendor == w.target
                and w.start <= e.t <= w.stop]
    first = sum(1 for e in requests if e.attempt <= 1)
    if not first or len(requests) < RETRY_AMPLIFICATION * first:
        return None
    ratio = len(requests) / first
    nearest = round(ratio)
    verb = _MULTIPLIED.get(nearest) if abs(ratio - nearest) <= 0.15 else None
    scheduled = sum(1 for e in events if isinstance(e, RetryEvent) and e.vendor == w.target
                    and w.start <= e.t <= w.stop)
    start = next(e.t for e in requests if e.attempt > 1)
    return Amplifier("retry", start, f"retries {verb or f'multiplied by {ratio:.1f}'} the calls to {w.target} during "
                                     f"the fault ({len(requests)} requests for {first} first attempts; {scheduled} "
                                     "retries scheduled)")


def _densest(times: Sequence[float], width: float) -> tuple[int, int]:
    """(first index, count) of the most token requests within `width` seconds (the earliest such burst)."""
    best = (0, 0)
    lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        if hi - lo + 1 > best[1]:
            best = (lo, hi - lo + 1)
    return best


def _tokens(w: FaultWindow, events: Sequence[Event]) -> Amplifier | None:
    asked = [e for e in events if isinstance(e, TokenIssuedEvent | TokenRefreshedEvent | TokenFailedEvent)
             and e.vendor == w.target and w.start <= e.t <= w.stop]
    first, count = _densest([e.t for e in asked], TOKEN_STORM_WINDOW_S)
    if count < TOKEN_STORM:
        return None
    burst = asked[first:first + count]
    failed = sum(1 for e in burst if isinstance(e, TokenFailedEvent))
    span = burst[-1].t - burst[0].t
    return Amplifier("token", burst[0].t, f"the token cache of {w.target} refreshed {count} times in {span:.0f} s "
                                          f"from {scenario_clock(burst[0].t)}"
                                          + (f" ({failed} of them failed)" if failed else ""))


def _throttle(w: FaultWindow, events: Sequence[Event]) -> Amplifier | None:
    held = [e for e in events if isinstance(e, ThrottledEvent) and e.vendor == w.target and w.start <= e.t <= w.stop]
    if not held:
        return None
    refused = sum(1 for e in held if e.refused)
    waited = sum(e.wait_s for e in held if not e.refused)
    return Amplifier("throttle", held[0].t, f"the client-side rate limiter held back {len(held)} call(s) to "
                                            f"{w.target} ({refused} refused, {waited:.0f} s of waiting in total)")


def _failover(w: FaultWindow, events: Sequence[Event]) -> Amplifier | None:
    exhausted = [e for e in events if isinstance(e, FailoverExhaustedEvent) and belongs(e.primary, w.target)
                 and w.start <= e.t <= w.stop]
    if not exhausted:
        return None
    return Amplifier("failover", exhausted[0].t, f"failover found no system to serve {len(exhausted)} read(s) "
                                                 f"from {scenario_clock(exhausted[0].t)}")


_FINDERS = (_breaker, _retries, _tokens, _throttle, _failover)


def root_cause(faults: Sequence[FaultWindow], events: Sequence[Event]) -> RootCause:
    causes = []
    for window in faults:
        if window.background:
            continue
        found = (finder(window, events) for finder in _FINDERS)
        causes.append(FaultCause(window, tuple(a for a in found if a is not None)))
    return RootCause(causes=tuple(causes), conditions=tuple(w for w in faults if w.background))


def cause_lines(cause: RootCause) -> list[str]:
    """The root cause as markdown list items: each incident fault and what amplified it, then the background
    conditions, said to be conditions."""
    lines = []
    for item in cause.causes:
        lines.append(f"- Root cause: the injected fault {fault_words(item.fault)}, {fault_span(item.fault)}")
        if item.amplifiers:
            lines += [f"  - amplified by {a.component}: {a.text}" for a in item.amplifiers]
        else:
            lines.append("  - no component amplified it (no breaker opened, retries added less than "
                         f"{(RETRY_AMPLIFICATION - 1) * 100:.0f} % more calls, fewer than {TOKEN_STORM} token "
                         f"requests in {TOKEN_STORM_WINDOW_S:g} s, no throttling, no failover exhausted)")
    for window in cause.conditions:
        lines.append(f"- Under a background condition (a condition of the run, not a cause): {fault_words(window)}, "
                     f"{fault_span(window)}")
    return lines


def headline(cause: RootCause) -> str | None:
    """One sentence for the summary: the first incident fault something amplified (else the first) and that
    amplifier, the other faults by name, the background conditions said to be conditions; None without an
    incident fault."""
    if not cause.causes:
        return None
    first = next((c for c in cause.causes if c.amplifiers), cause.causes[0])
    others = [c.fault.title for c in cause.causes if c is not first]
    text = f'fault "{first.fault.title}" ({first.fault.fault} on {first.fault.target})'
    if first.amplifiers:
        text += f", amplified as {first.amplifiers[0].text}"
    if others:
        text += f"; also fault(s) {', '.join(dict.fromkeys(others))}"
    if cause.conditions:
        text += f"; under a background condition: {', '.join(w.title for w in cause.conditions)}"
    return text
