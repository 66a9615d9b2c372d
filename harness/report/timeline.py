"""The notable moments of a scenario, from its journal: what an incident timeline and the Allure steps list.

Faults are named by their `name` (from `fault.start`); a background fault is a "background condition".
Repetitive events (failed operations, token failures, refused credentials, failover exhaustion, failed jobs)
are summarised: the first and last of each kind per vendor, with the count. Labels, vendor names, fault
parameters and error class names only; a fault parameter whose name suggests a secret is redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.journal import (
    BreakerEvent,
    CredentialRejectedEvent,
    DegradationActivatedEvent,
    DegradationClearedEvent,
    Event,
    FailoverExhaustedEvent,
    FaultFailed,
    FaultStarted,
    FaultStopped,
    FlagChangedEvent,
    JobEvent,
    OperationEvent,
    ProviderHealthEvent,
    QueueEvent,
    ScenarioEnded,
    ScenarioStarted,
    TokenFailedEvent,
)

_SECRET_WORDS = ("secret", "token", "password", "key", "credential", "auth")


@dataclass(frozen=True, slots=True)
class Moment:
    t: float
    kind: str  # "fault", "breaker", "scenario", ...
    text: str


def scenario_clock(t: float) -> str:
    """T+m:ss.s: scenario time, the only clock a run has."""
    minutes, seconds = divmod(max(t, 0.0), 60.0)
    return f"T+{int(minutes)}:{seconds:04.1f}"


def fault_params(params: dict[str, str | int | float | bool | None]) -> str:
    shown = []
    for key in sorted(params):
        value = "[redacted]" if any(w in key.lower() for w in _SECRET_WORDS) else params[key]
        shown.append(f"{key}={value}")
    return ", ".join(shown)


def _fault_noun(event: FaultStarted | FaultStopped) -> str:
    return "Background condition" if event.background else "Fault"


def _fault_name(event: FaultStarted | FaultStopped) -> str:
    """The fault's name as the scenario gave it (kind@target by default; older journals have none)."""
    return f' "{event.name or f"{event.fault}@{event.target}"}"'


def _single(event: Event) -> Moment | None:
    match event:
        case ScenarioStarted():
            return Moment(event.t, "scenario", f"Scenario {event.scenario} started ({event.mode}, seed {event.seed}, "
                                               f"{event.duration_s:g} s planned)")
        case ScenarioEnded():
            return Moment(event.t, "scenario", f"Scenario ended ({event.operations} operations, "
                                               f"{event.in_flight_cancelled} cancelled in flight)")
        case FaultStarted():
            params = fault_params(event.params)
            return Moment(event.t, "fault", f"{_fault_noun(event)} {event.fault_id} started: {event.fault} on "
                                            f"{event.target}{_fault_name(event)}" + (f" ({params})" if params else ""))
        case FaultStopped():
            return Moment(event.t, "fault", f"{_fault_noun(event)} {event.fault_id} stopped: {event.fault} on "
                                            f"{event.target}{_fault_name(event)}")
        case FaultFailed():
            return Moment(event.t, "fault", f"Fault {event.fault_id} could not {event.action}: {event.fault} on "
                                            f"{event.target} ({event.error.split(':')[0]})")
        case BreakerEvent():
            rate = "" if event.failure_rate is None else f", failure rate {event.failure_rate * 100:.0f}%"
            how = " (manual)" if event.manual else ""
            return Moment(event.t, "breaker", f"Breaker {event.breaker}: {event.from_state} → {event.to_state}"
                                              f"{how} ({event.calls} calls{rate})")
        case ProviderHealthEvent():
            return Moment(event.t, "health", f"Provider {event.vendor}: {event.from_status} → {event.to_status}")
        case DegradationActivatedEvent():
            return Moment(event.t, "degradation", f"{event.vendor}: fallback to cached reads "
                                                  f"({', '.join(event.reasons)})")
        case DegradationClearedEvent():
            return Moment(event.t, "degradation", f"{event.vendor}: fallback cleared after {event.duration_s:g} s")
        case FlagChangedEvent():
            return Moment(event.t, "flag", f"Feature flag {event.flag} ({event.scope}): {event.previous} → "
                                           f"{event.enabled}")
        case QueueEvent() if event.kind in ("queue.paused", "queue.resumed"):
            return Moment(event.t, "queue", f"Queue {event.queue} {event.kind.split('.')[1]}")
    return _lab(event)


def _lab(event: Event) -> Moment | None:
    """The lab's own moments (real mode: `lab.timing`, `lab.inconclusive`, `lab.aborted`), read by kind so that
    a journal from before they existed reads the same."""
    kind = str(getattr(event, "kind", ""))
    if "abort" in kind:
        signal = getattr(event, "signal", None)
        return Moment(event.t, "scenario", "Run interrupted (aborted" + (f", {signal}" if signal else "")
                      + "): nothing after this moment was observed")
    if kind == "lab.inconclusive":
        return Moment(event.t, "lab", f"The lab could not judge: {getattr(event, 'reason', '')}")
    if kind == "lab.timing":
        past = "past" if getattr(event, "exceeded", False) else "within"
        return Moment(event.t, "lab", f"Lab lateness {past} tolerance ({getattr(event, 'tolerance_s', 0.0):g} s): "
                                      f"{getattr(event, 'worst', '')}")
    return None


def _group(event: Event) -> tuple[str, str] | None:
    """The (kind, subject) of an event that is summarised rather than listed."""
    match event:
        case OperationEvent() if not event.ok:
            return ("failed operation", event.vendor)
        case TokenFailedEvent():
            return ("token request failed", event.vendor)
        case CredentialRejectedEvent():
            return ("credential rejected", event.vendor)
        case FailoverExhaustedEvent():
            return ("failover exhausted", event.primary)
        case JobEvent() if event.kind == "job.failed":
            return ("job failed for good", event.queue)
        case QueueEvent() if event.kind == "queue.store_unavailable":
            return ("queue store unavailable", event.queue)
    return None


def moments(events: Sequence[Event]) -> list[Moment]:
    """The scenario's timeline, in time order (journal order among equal times)."""
    out: list[tuple[float, int, Moment]] = []
    groups: dict[tuple[str, str], list[tuple[int, Event]]] = {}
    for index, event in enumerate(events):
        single = _single(event)
        if single is not None:
            out.append((event.t, index, single))
            continue
        group = _group(event)
        if group is not None:
            groups.setdefault(group, []).append((index, event))
    for (kind, subject), members in groups.items():
        count = len(members)
        first_index, first = members[0]
        out.append((first.t, first_index, Moment(first.t, "impact", f"First {kind} ({subject})"
                                                 + (f"; {count} in total" if count > 1 else ""))))
        if count > 1:
            last_index, last = members[-1]
            out.append((last.t, last_index, Moment(last.t, "impact", f"Last {kind} ({subject})")))
    return [m for _, _, m in sorted(out, key=lambda item: (item[0], item[1]))]
