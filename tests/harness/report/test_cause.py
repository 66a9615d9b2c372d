"""The root cause names the injected fault (by its `name`) and the component that amplified it, from the
journal; background faults are conditions, never the cause; fault names in report.html and incident.md."""

from __future__ import annotations

import re

from harness.journal import (
    BreakerEvent,
    Event,
    FaultStarted,
    FaultStopped,
    OperationEvent,
    RequestEvent,
    RetryEvent,
    ThrottledEvent,
    TokenFailedEvent,
    TokenRefreshedEvent,
)
from harness.report.cause import belongs, root_cause
from harness.report.derived import scenario_items
from harness.report.html import render_html
from harness.report.incident import render_incident
from harness.report.series import fault_windows
from tests.harness.report.builders import op, scenario, summary_for

NAME = "epic-503s"


def _fault(start: float = 30.0, stop: float = 60.0) -> list[Event]:
    return [FaultStarted(t=start, fault_id="f1", fault="outage", target="epic", params={"status": 503}, name=NAME),
            FaultStopped(t=stop, fault_id="f1", fault="outage", target="epic", name=NAME)]


def _background() -> list[Event]:
    return [FaultStarted(t=0.0, fault_id="f0", fault="net_latency", target="epic", params={"latency_ms": 80},
                         name="wan-latency", background=True)]  # never stopped: a condition of the whole run


def _request(t: float, attempt: int, n: int) -> RequestEvent:
    return RequestEvent(t=t, vendor="epic", method="GET", path="/Patient/x", status=503, duration_ms=5.0,
                        attempt=attempt, error="ServerError", correlation_id=f"c{n}")


def _amplified() -> list[Event]:
    """During the fault: 10 calls, each tried three times (30 requests); the breaker epic_prod opens at 30 %
    after 20 calls and refuses 4 operations; 4 token refreshes (one failed); 2 calls throttled."""
    events: list[Event] = []
    for n in range(10):
        t = 31.0 + n
        events += [_request(t, 1, n), RetryEvent(t=t, vendor="epic", attempt=1, delay_s=0.1, reason="ServerError",
                                                 retry_after_s=None),
                   _request(t + 0.1, 2, n), _request(t + 0.3, 3, n)]
    events.append(BreakerEvent(t=41.0, breaker="epic_prod", from_state="CLOSED", to_state="OPEN", failure_rate=0.3,
                               calls=20))
    events += [OperationEvent(t=42.0 + i, op_id=100 + i, operation="read_patient", vendor="epic", started=42.0 + i,
                              duration_ms=0.0, ok=False, error="CircuitOpen") for i in range(4)]
    events += [TokenRefreshedEvent(t=35.0 + 5 * i, vendor="epic", expires_in_s=300.0, reason="rejected")
               for i in range(3)]
    events.append(TokenFailedEvent(t=52.0, vendor="epic", status=503, error="ServerError"))
    events += [ThrottledEvent(t=55.0, vendor="epic", wait_s=2.0, limit=10, window_s=1.0, refused=False,
                              correlation_id="c1"),
               ThrottledEvent(t=56.0, vendor="epic", wait_s=0.0, limit=10, window_s=1.0, refused=True,
                              correlation_id="c2")]
    return events


def _ops() -> list[Event]:
    return [op(i + 0.5, ok=not 30 <= i < 60, vendor="epic", op_id=i) for i in range(120)]


def _render(events: list[Event]) -> tuple[str, str]:
    summary = summary_for([("s", [])])
    items = scenario_items(summary, events)
    return render_incident(summary, items), render_html(summary, items)


def test_breakers_belong_to_the_vendor_they_are_named_after() -> None:
    assert [belongs(b, "epic") for b in ("epic", "epic_prod", "epic-b", "epicure", "cerner_prod")] == [
        True, True, True, False, False]


def test_root_cause_names_the_fault_and_each_amplifier() -> None:
    events = scenario([*_fault(), *_amplified()])
    md, _ = _render(events)
    assert '- Root cause: the injected fault "epic-503s" (f1): outage on epic (status=503), T+0:30.0 to T+1:00.0' in md
    assert ("  - amplified by breaker: the breaker epic_prod opened at a 30 % failure rate after 20 calls at T+0:41.0 "
            "(4 operation(s) refused while it was OPEN)") in md
    assert ("  - amplified by retry: retries tripled the calls to epic during the fault (30 requests for 10 first "
            "attempts; 10 retries scheduled)") in md
    assert ("  - amplified by token: the token cache of epic refreshed 4 times in 17 s from T+0:35.0 (1 of them "
            "failed)") in md
    assert ("  - amplified by throttle: the client-side rate limiter held back 2 call(s) to epic (1 refused, 2 s of "
            "waiting in total)") in md
    assert ('Root cause: fault "epic-503s" (outage on epic), amplified as the breaker epic_prod opened at a 30 % '
            "failure rate after 20 calls") in md
    assert "# Incident Report: s: epic-503s (outage on epic)" in md


def test_a_fault_nothing_amplified_says_so() -> None:
    routine = [TokenRefreshedEvent(t=t, vendor="epic", expires_in_s=300.0, reason="expiring") for t in (31, 55, 95)]
    md, _ = _render(scenario([*_fault(stop=100.0), *_ops(), *routine]))  # 3 refreshes in 64 s: routine, no storm
    assert "  - no component amplified it (no breaker opened, retries added less than 50 % more calls" in md


def test_amplifiers_outside_the_fault_or_of_another_vendor_are_not_its() -> None:
    late = BreakerEvent(t=90.0, breaker="epic_prod", from_state="CLOSED", to_state="OPEN", failure_rate=0.5, calls=20)
    other = BreakerEvent(t=40.0, breaker="cerner_prod", from_state="CLOSED", to_state="OPEN", failure_rate=0.5,
                         calls=20)
    manual = BreakerEvent(t=45.0, breaker="epic_prod", from_state="CLOSED", to_state="OPEN", failure_rate=None,
                          calls=0, manual=True)
    events = scenario([*_fault(), late, other, manual])
    [cause] = root_cause(fault_windows(events, 120.0), events).causes
    assert cause.amplifiers == ()


def test_background_faults_are_conditions_never_the_cause() -> None:
    events = scenario([*_background(), *_fault(), *_amplified(), *_ops()])
    md, html = _render(events)
    assert "Root cause: the injected fault \"wan-latency\"" not in md
    assert ('- Under a background condition (a condition of the run, not a cause): "wan-latency" (f0): net_latency '
            "on epic (latency_ms=80), T+0:00.0 to the end (never stopped)") in md
    assert "# Incident Report: s: epic-503s (outage on epic); under a background condition: wan-latency" in md
    assert '; under a background condition: wan-latency.' in md  # the summary's root cause sentence
    assert '| T+0:00.0 | Background condition f0 started: net_latency on epic "wan-latency" (latency_ms=80) |' in md
    assert '| T+0:30.0 | Fault f1 started: outage on epic "epic-503s" (status=503) |' in md
    assert '| T+1:00.0 | Fault f1 stopped: outage on epic "epic-503s" |' in md
    assert 'Fault f0 "wan-latency" was never removed' not in md
    # report.html: the incident fault in the fault lane and shaded; the background one in its own lighter lane
    assert re.search(r'<rect class="fault-bar" [^>]*data-name="epic-503s"', html)
    assert re.search(r'<rect class="fault-bar background" [^>]*data-name="wan-latency"', html)
    assert ">epic-503s (f1)</text>" in html
    assert '<text x="6" y="' in html
    assert ">background</text>" in html
    assert 'class="fault-label background">wan-latency (f0)</text>' in html
    assert 'class="fault-window"' in html
    assert 'data-fault="f0" data-start' not in html
    assert "background condition</text>" in html  # the legend


def test_only_a_background_condition_is_not_called_the_root_cause() -> None:
    events = scenario([*_background(), *[op(i + 0.5, vendor="epic", op_id=i) for i in range(120)]])
    md, html = _render(events)
    assert "Root cause: the injected fault" not in md
    assert "Root cause:" not in md.split("## Root Cause")[0].split("## Summary")[1]
    assert "- No incident fault was injected and no operator step was taken." in md
    assert "(no incident fault injected; under a background condition: wan-latency)" in md
    assert ">no incident fault</text>" in html
    assert "**Status:** Resolved" in md  # a background condition left on to the end is not an unresolved incident


def test_the_summary_names_the_fault_something_amplified_and_the_others() -> None:
    quiet = [FaultStarted(t=5.0, fault_id="f0", fault="latency", target="epic", params={}, name="slow-epic"),
             FaultStopped(t=10.0, fault_id="f0", fault="latency", target="epic", name="slow-epic")]
    md, _ = _render(scenario([*quiet, *_fault(), *_amplified()]))
    assert ('Root cause: fault "epic-503s" (outage on epic), amplified as the breaker epic_prod opened at a 30 % '
            "failure rate after 20 calls at T+0:41.0 (4 operation(s) refused while it was OPEN); also fault(s) "
            "slow-epic.") in md
