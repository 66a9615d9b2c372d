"""The breaker checks (harness/checks/breaker.py) and operator transitions: a manual OPEN is not the
breaker opening on the fault, a manual move out of OPEN is not a half-open timing fault, and a breaker
left FORCED_OPEN fails breaker_closes."""

from __future__ import annotations

from harness.checks import evaluate
from harness.checks.models import BreakerCloses, BreakerHalfOpens, BreakerOpens
from harness.journal import BreakerEvent, Event, FaultStarted, FaultStopped, ScenarioStarted

SOURCE = "000_030ea53f0735abf7.txt §2"
BASE: list[Event] = [
    ScenarioStarted(t=0.0, scenario="s", file="s.yaml", seed=1, mode="virtual", duration_s=420.0),
    FaultStarted(t=60.0, fault_id="f1", fault="outage", target="epic", params={"status": 503}),
    FaultStopped(t=180.0, fault_id="f1", fault="outage", target="epic"),
]


def br(t: float, a: str, b: str, manual: bool = False) -> BreakerEvent:
    return BreakerEvent(t=t, breaker="epic", from_state=a, to_state=b, failure_rate=None, calls=0, manual=manual)


def verdict(check: object, transitions: list[BreakerEvent]) -> str:
    [result] = evaluate([check], [*BASE, *transitions], SOURCE)
    return result.verdict


def test_a_manual_open_is_not_the_breaker_opening_on_the_fault() -> None:
    spec = BreakerOpens(check="breaker_opens", vendor="epic", within=30)
    assert verdict(spec, [br(61.0, "CLOSED", "OPEN", manual=True)]) == "fail"
    assert verdict(spec, [br(61.0, "CLOSED", "OPEN", manual=True), br(62.0, "OPEN", "FORCED_OPEN", manual=True),
                          br(70.0, "FORCED_OPEN", "CLOSED", manual=True), br(75.0, "CLOSED", "OPEN")]) == "pass"


def test_an_operator_leaving_open_early_is_not_a_half_open_fault() -> None:
    spec = BreakerHalfOpens(check="breaker_half_opens", vendor="epic")
    automatic = [br(62.0, "CLOSED", "OPEN"), br(122.0, "OPEN", "HALF_OPEN"), br(123.0, "HALF_OPEN", "CLOSED")]
    assert verdict(spec, [*automatic, br(150.0, "CLOSED", "OPEN"), br(160.0, "OPEN", "CLOSED", manual=True)]) == "pass"
    assert verdict(spec, [*automatic, br(150.0, "CLOSED", "OPEN"), br(160.0, "OPEN", "CLOSED")]) == "fail"


def test_a_breaker_left_forced_open_has_not_closed() -> None:
    spec = BreakerCloses(check="breaker_closes", vendor="epic", within=90)
    assert verdict(spec, [br(62.0, "CLOSED", "OPEN"), br(70.0, "OPEN", "FORCED_OPEN", manual=True)]) == "fail"
    assert verdict(spec, [br(62.0, "CLOSED", "OPEN"), br(200.0, "OPEN", "CLOSED", manual=True)]) == "pass"
