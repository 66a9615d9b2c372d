"""Every check over hand-made journals: each one passes on a healthy journal and fails on a bad one."""

from collections.abc import Sequence

import pytest

from harness.checks import evaluate
from harness.checks.models import (
    BreakerCloses,
    BreakerHalfOpens,
    BreakerOpens,
    BreakerStaysClosed,
    LatencyPercentile,
    RecoveryTime,
    SuccessRate,
)
from harness.checks.sla import percentile
from harness.journal import (
    BreakerEvent,
    Event,
    FaultStarted,
    FaultStopped,
    OperationEvent,
    RequestEvent,
    ScenarioStarted,
)

SOURCE = "000_030ea53f0735abf7.txt §2"


def start(duration: float = 420.0) -> ScenarioStarted:
    return ScenarioStarted(t=0.0, scenario="s", file="s.yaml", seed=1, mode="virtual", duration_s=duration)


def outage(at: float = 60.0, until: float = 180.0) -> list[Event]:
    return [
        FaultStarted(t=at, fault_id="f1", fault="outage", target="medplum", params={"status": 503}),
        FaultStopped(t=until, fault_id="f1", fault="outage", target="medplum"),
    ]


def br(t: float, a: str, b: str) -> BreakerEvent:
    return BreakerEvent(t=t, breaker="medplum", from_state=a, to_state=b, failure_rate=None, calls=10)


def op(started: float, ok: bool = True, ms: float = 20.0, n: int = 0) -> OperationEvent:
    return OperationEvent(t=started + ms / 1000, op_id=n, operation="read_patient", vendor="medplum",
                          started=started, duration_ms=ms, ok=ok, error=None if ok else "ServerError")


HEALTHY_BREAKER = [br(62.0, "CLOSED", "OPEN"), br(122.0, "OPEN", "HALF_OPEN"), br(122.5, "HALF_OPEN", "OPEN"),
                   br(182.5, "OPEN", "HALF_OPEN"), br(183.0, "HALF_OPEN", "CLOSED")]


def run(check: object, events: Sequence[Event]) -> tuple[str, object]:
    [result] = evaluate([check], events, SOURCE)
    assert result.source == SOURCE
    return result.verdict, result.observed


def test_breaker_opens() -> None:
    spec = BreakerOpens(check="breaker_opens", vendor="medplum", within=30)
    assert run(spec, [start(), *outage(), *HEALTHY_BREAKER]) == ("pass", 2.0)
    assert run(spec, [start(), *outage()]) == ("fail", None)  # never opened
    assert run(spec, [start(), *outage(), br(100.0, "CLOSED", "OPEN")])[0] == "fail"  # 40 s late
    assert run(spec, [start(), *HEALTHY_BREAKER])[0] == "fail"  # no fault to open on


def test_breaker_half_opens() -> None:
    spec = BreakerHalfOpens(check="breaker_half_opens", vendor="medplum", after=60, tolerance=1)
    assert run(spec, [start(), *outage(), *HEALTHY_BREAKER]) == ("pass", 60.0)
    late = [br(62.0, "CLOSED", "OPEN"), br(130.0, "OPEN", "HALF_OPEN")]
    assert run(spec, [start(), *outage(), *late]) == ("fail", 68.0)
    stuck = [br(62.0, "CLOSED", "OPEN")]
    assert run(spec, [start(), *outage(), *stuck])[0] == "fail"
    assert run(spec, [start(), *outage()])[0] == "fail"  # never opened
    # opened too close to the end to be judged: not a failure by itself, but nothing to show either
    assert run(spec, [start(100.0), br(80.0, "CLOSED", "OPEN")])[0] == "fail"


def test_breaker_half_opens_on_the_first_call_after_the_wait() -> None:
    """resilience4j moves OPEN -> HALF_OPEN on the first call after the wait: a gap in the traffic delays it."""
    spec = BreakerHalfOpens(check="breaker_half_opens", vendor="medplum", after=60, tolerance=1)
    opened, half = br(62.0, "CLOSED", "OPEN"), br(126.0, "OPEN", "HALF_OPEN")
    no_call_until_126 = [op(100.0), op(126.0)]
    assert run(spec, [start(), *outage(), opened, *no_call_until_126, half]) == ("pass", 64.0)
    a_call_at_123 = [op(100.0), op(123.0), op(126.0)]  # this call should have been the trial call
    assert run(spec, [start(), *outage(), opened, *a_call_at_123, half])[0] == "fail"
    early = br(100.0, "OPEN", "HALF_OPEN")
    assert run(spec, [start(), *outage(), opened, op(99.0), early])[0] == "fail"


def test_breaker_closes() -> None:
    spec = BreakerCloses(check="breaker_closes", vendor="medplum", within=90)
    assert run(spec, [start(), *outage(), *HEALTHY_BREAKER]) == ("pass", 3.0)
    still_open = HEALTHY_BREAKER[:4]
    assert run(spec, [start(), *outage(), *still_open])[0] == "fail"
    slow = [*HEALTHY_BREAKER[:4], br(300.0, "HALF_OPEN", "CLOSED")]
    assert run(spec, [start(), *outage(), *slow]) == ("fail", 120.0)


def request(t: float, vendor: str = "medplum") -> RequestEvent:
    return RequestEvent(t=t, vendor=vendor, method="GET", path="/fhir/R4/Patient/p", status=200, duration_ms=5.0,
                        attempt=1, error=None, correlation_id=f"c{t:g}")


def test_breaker_stays_closed() -> None:
    spec = BreakerStaysClosed(check="breaker_stays_closed", vendor="medplum")
    assert run(spec, [start(), *outage(), request(10.0)]) == ("pass", 0)
    assert run(spec, [start(), *outage(), *HEALTHY_BREAKER]) == ("fail", 2)
    assert run(spec, [start(), *outage()]) == ("fail", None)  # a breaker that saw no call: matched nothing


def test_success_rate_outside_faults_with_grace() -> None:
    # fault window 60..180 s; with 30 s grace, operations overlapping 60..210 s are out of scope
    recovered_by_200 = [op(float(t), ok=not (60 <= t < 200)) for t in range(0, 420, 2)]
    recovered_by_220 = [op(float(t), ok=not (60 <= t < 220)) for t in range(0, 420, 2)]
    grace = SuccessRate(check="success_rate", min=0.99, outside_faults=True, grace=30)
    no_grace = SuccessRate(check="success_rate", min=0.99, outside_faults=True, grace=0)
    everything = SuccessRate(check="success_rate", min=0.99, outside_faults=False)
    assert run(grace, [start(), *outage(), *recovered_by_200]) == ("pass", 1.0)
    verdict, observed = run(grace, [start(), *outage(), *recovered_by_220])
    assert verdict == "fail"
    assert observed == pytest.approx(130 / 134)  # 212..218 s failed; 134 operations in scope
    assert run(no_grace, [start(), *outage(), *recovered_by_200])[0] == "fail"
    assert run(everything, [start(), *outage(), *recovered_by_200])[0] == "fail"


def test_success_rate_exact_band() -> None:
    ops = [op(float(t), ok=t != 0) for t in range(100)]  # 99/100
    assert run(SuccessRate(check="success_rate", min="99%"), [start(), *ops]) == ("pass", 0.99)
    assert run(SuccessRate(check="success_rate", min="99.5%"), [start(), *ops]) == ("fail", 0.99)
    assert run(SuccessRate(check="success_rate", min=0.9, min_operations=500), [start(), *ops])[0] == "fail"
    assert run(SuccessRate(check="success_rate", min=0.9), [start()])[0] == "fail"  # nothing to judge


def test_latency_percentile() -> None:
    ops = [op(float(t), ms=10.0 + t) for t in range(100)]  # 10..109 ms
    assert percentile([o.duration_ms for o in ops], 95) == 104.0
    assert run(LatencyPercentile(check="latency", max=0.2), [start(), *ops]) == ("pass", 104.0)
    assert run(LatencyPercentile(check="latency", max=0.1), [start(), *ops]) == ("fail", 104.0)
    assert run(LatencyPercentile(check="latency", max=0.1, percentile=50), [start(), *ops]) == ("pass", 59.0)


def test_latency_mean_is_the_runbooks_average() -> None:
    """000 §7 bands the *average* latency: one slow outlier moves the mean, not the median."""
    ops = [op(float(t), ms=100.0) for t in range(99)] + [op(99.0, ms=40100.0)]  # mean 500 ms, p95 100 ms
    mean = LatencyPercentile(check="latency", statistic="mean", max=0.5)
    assert run(mean, [start(), *ops]) == ("pass", 500.0)
    assert run(LatencyPercentile(check="latency", statistic="mean", max=0.499), [start(), *ops]) == ("fail", 500.0)
    assert run(LatencyPercentile(check="latency", max=0.2), [start(), *ops]) == ("pass", 100.0)


def test_recovery_time() -> None:
    spec = RecoveryTime(check="recovery_time", vendor="medplum", max=90, stable_for=30)
    ops = [op(float(t), ok=not (60 <= t < 240)) for t in range(0, 420, 2)]
    verdict, observed = run(spec, [start(), *outage(), *ops])
    assert verdict == "pass"
    assert observed == pytest.approx(60.02)
    never = [op(float(t), ok=t < 60) for t in range(0, 420, 2)]
    assert run(spec, [start(), *outage(), *never]) == ("fail", None)
    slow = [op(float(t), ok=not (60 <= t < 300)) for t in range(0, 420, 2)]
    assert run(spec, [start(), *outage(), *slow])[0] == "fail"
    flappy = [op(float(t), ok=(t < 60 or t >= 190) and t != 200) for t in range(0, 420, 2)]
    _, first_stable = run(spec, [start(), *outage(), *flappy])
    assert first_stable == pytest.approx(22.02)  # the success at 190 did not last; 202 did


def test_between_judges_only_operations_started_in_the_window() -> None:
    ops = [op(float(t), ok=not 90 <= t < 180) for t in range(0, 300, 3)]  # failing while a step broke auth
    before = SuccessRate(check="success_rate", min="100%", between=("0s", "90s"), outside_faults=False)
    during = SuccessRate(check="success_rate", min="1%", between=("90s", "180s"), outside_faults=False)
    straddling = SuccessRate(check="success_rate", min="100%", between=("60s", "120s"), outside_faults=False)
    assert run(before, [start(), *ops]) == ("pass", 1.0)
    assert run(during, [start(), *ops]) == ("fail", 0.0)
    assert run(straddling, [start(), *ops])[0] == "fail"
    slow = [op(float(t), ms=900.0 if t >= 150 else 20.0) for t in range(0, 300, 3)]
    assert run(LatencyPercentile(check="latency", max=0.1, between=(0, 150)), [start(), *slow]) == ("pass", 20.0)
    assert run(LatencyPercentile(check="latency", max=0.1, percentile=100, between=(0, 151)),
               [start(), *slow])[0] == "fail"
    with pytest.raises(ValueError, match="is empty"):
        SuccessRate(check="success_rate", min=0.9, between=(60, 60))


def test_event_count_over_kind_fields_and_window() -> None:
    from harness.checks.models import EventCount
    from harness.journal import RequestEvent

    def request(t: float, status: int) -> RequestEvent:
        return RequestEvent(t=t, vendor="epic", method="GET", path="/api/FHIR/R4/Patient/x", status=status,
                            duration_ms=1.0, attempt=1, error=None, correlation_id="c")

    events = [start(), request(10, 200), request(20, 429), request(30, 200), request(200, 429)]
    no_429 = EventCount(check="events", kind="request", where={"status": 429}, max=0)
    assert run(no_429, events) == ("fail", 2)
    assert run(no_429.model_copy(update={"between": (0.0, 15.0)}), events) == ("pass", 0)
    assert run(EventCount(check="events", kind="request", where={"vendor": "epic"}, min=4), events) == ("pass", 4)
    assert run(EventCount(check="events", kind="request", where={"vendor": "cerner"}, min=1), events) == ("fail", 0)
    assert run(EventCount(check="events", kind="request", min=1, max=3), events) == ("fail", 4)
    with pytest.raises(ValueError, match="unknown event kind 'asteroid'"):
        EventCount(check="events", kind="asteroid", min=1)
    with pytest.raises(ValueError, match="no field 'colour'"):
        EventCount(check="events", kind="request", where={"colour": "red"}, min=1)
    with pytest.raises(ValueError, match="cannot fail"):
        EventCount(check="events", kind="request")
