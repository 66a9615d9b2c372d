"""Issue 13's vacuous verdicts, each as a regression test over a hand-built journal: failover breakers judged
under the lab's idle ones, a whole-run fault taken for "the last fault", a check that cannot pick its fault,
and an `Unexpected*` error in a passing run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.checks import evaluate, evaluate_all
from harness.checks.result import CheckResult
from harness.journal import BreakerEvent, Event, FaultStarted, FaultStopped, OperationEvent, RequestEvent
from harness.scenario.loader import load_scenario
from tests.harness.checks.journals import journal

SOURCE = "000_030ea53f0735abf7.txt §2"
FAILOVER = """name: failover-as-a-new-user-wrote-it
description: d
runbook: ["004_bc3882054056792c.txt (Connection Management)"]
duration: 8m
setup:
  failover: {primary: epic, fallbacks: [cerner]}
workload:
  - {operation: read_patient_failover, vendor: epic, rate: 6/m}
faults:
  - {kind: outage, target: epic, at: 2m, for: 3m}
expectations:
  - {check: invariant, invariant: breaker_transitions_legal, vendor: cerner}
  - {check: breaker_closes, vendor: epic, within: 90s}
"""


def br(t: float, a: str, b: str, name: str) -> BreakerEvent:
    return BreakerEvent(t=t, breaker=name, from_state=a, to_state=b, failure_rate=None, calls=20)


def req(t: float, vendor: str) -> RequestEvent:
    return RequestEvent(t=t, vendor=vendor, method="GET", path="/p", status=200, duration_ms=5.0, attempt=1, error=None,
                        correlation_id=f"c{t:g}")


def fault(fid: str, kind: str, target: str, begin: float, end: float | None, *, name: str = "",
          background: bool = False) -> list[Event]:
    label = name or f"{kind}@{target}"
    events: list[Event] = [FaultStarted(t=begin, fault_id=fid, fault=kind, target=target, params={}, name=label,
                                        background=background)]
    if end is not None:
        events.append(FaultStopped(t=end, fault_id=fid, fault=kind, target=target, name=label, background=background))
    return events


def op(t: float, ok: bool = True, vendor: str = "medplum", error: str | None = None) -> OperationEvent:
    return OperationEvent(t=t + 0.02, op_id=int(t * 10), operation="read_patient", vendor=vendor, started=t,
                          duration_ms=20.0, ok=ok, error=error if error else (None if ok else "ServerError"))


def judge(tmp_path: Path, text: str, events: list[Event]) -> dict[str, CheckResult]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    return {r.name: r for r in evaluate(scenario.expectations, events, SOURCE)}


def test_failover_breakers_are_judged_not_the_lab_clients_idle_ones(tmp_path: Path) -> None:
    # the issue: "no breaker transitions" while cerner_prod made four; "closed at 300s" while epic_prod closed
    # at 342.6 s. The lab's own epic and cerner clients carry no traffic in a failover setup.
    events = journal(480, fault("f1", "outage", "epic", 120.0, 300.0),
                     [req(10.0, "epic_prod"), req(130.0, "cerner_prod")],
                     [br(125.0, "CLOSED", "OPEN", "epic_prod"), br(185.0, "OPEN", "HALF_OPEN", "epic_prod"),
                      br(185.5, "HALF_OPEN", "OPEN", "epic_prod"), br(342.0, "OPEN", "HALF_OPEN", "epic_prod"),
                      br(342.6, "HALF_OPEN", "CLOSED", "epic_prod")],
                     [br(140.0, "CLOSED", "OPEN", "cerner_prod"), br(200.0, "OPEN", "HALF_OPEN", "cerner_prod"),
                      br(200.5, "HALF_OPEN", "OPEN", "cerner_prod"), br(260.5, "OPEN", "HALF_OPEN", "cerner_prod")])
    results = judge(tmp_path, FAILOVER, events)
    legal = results["invariant[breaker_transitions_legal,cerner]"]
    assert (legal.verdict, legal.matched, legal.detail) == ("pass", 4, "4 transition(s) legal (0 manual)")
    closes = results["breaker_closes[epic]"]
    assert (closes.verdict, closes.observed, closes.matched) == ("pass", 42.6, 5)
    assert closes.detail == "epic_prod closed for good at 342.6s; the fault ended at 300s"


def test_an_illegal_failover_transition_fails_under_the_vendors_name(tmp_path: Path) -> None:
    events = journal(480, fault("f1", "outage", "epic", 120.0, 300.0),
                     [br(140.0, "CLOSED", "HALF_OPEN", "cerner_prod"), br(300.0, "HALF_OPEN", "CLOSED", "epic_prod")])
    results = judge(tmp_path, FAILOVER, events)
    assert results["invariant[breaker_transitions_legal,cerner]"].verdict == "fail"


WAN = """name: wan
description: d
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 7m
workload:
  - {operation: read_patient, vendor: medplum, rate: 1/s}
faults:
  - {kind: net_latency, target: medplum, at: 0s, latency: 40ms, name: wan, background: BACKGROUND}
  - {kind: outage, target: medplum, at: 1m, for: 2m}
expectations:
  - {check: recovery_time, vendor: medplum, max: 30s}
  - {check: breaker_closes, vendor: medplum, within: 90s}
  - {check: breaker_opens, vendor: medplum, within: 30s}
  - {check: success_rate, vendor: medplum, min: 99%}
"""


def wan_journal() -> list[Event]:
    """A WAN latency for the whole run (never stopped) and an outage from 60 s to 180 s."""
    ops = [op(float(t), ok=not 60 <= t < 182) for t in range(0, 420, 2)]
    return journal(420, fault("f1", "net_latency", "medplum", 0.0, None, name="wan", background=True),
                   fault("f2", "outage", "medplum", 60.0, 180.0), ops, [req(5.0, "medplum")],
                   [br(70.0, "CLOSED", "OPEN", "medplum"), br(130.0, "OPEN", "HALF_OPEN", "medplum"),
                    br(130.5, "HALF_OPEN", "OPEN", "medplum"), br(190.5, "OPEN", "HALF_OPEN", "medplum"),
                    br(191.0, "HALF_OPEN", "CLOSED", "medplum")])


def test_a_background_fault_is_not_the_last_fault(tmp_path: Path) -> None:
    results = judge(tmp_path, WAN.replace("BACKGROUND", "true"), wan_journal())
    assert results["recovery_time[medplum]"].verdict == "pass", results["recovery_time[medplum]"].detail
    assert results["recovery_time[medplum]"].observed == 2.02  # from the outage's end, not the run's
    closes = results["breaker_closes[medplum]"]
    assert (closes.verdict, closes.observed) == ("pass", 11.0)
    assert results["breaker_opens[medplum]"].observed == 10.0  # from the outage, not the WAN at 0 s
    # outside_faults leaves out the outage only: the steady state under the WAN latency is judged
    overlapping = [t for t in range(0, 420, 2) if t + 0.02 >= 60 and t <= 180]
    assert results["success_rate[medplum]"].matched == 210 - len(overlapping)


def test_without_background_the_checks_say_why_they_cannot_judge(tmp_path: Path) -> None:
    events = [e.model_copy(update={"background": False}) if isinstance(e, FaultStarted | FaultStopped) else e
              for e in wan_journal()]
    results = judge(tmp_path, WAN.replace("BACKGROUND", "false"), events)
    for name in ("recovery_time[medplum]", "breaker_closes[medplum]"):
        result = results[name]
        assert (result.verdict, result.matched) == ("fail", 0)
        assert result.detail.startswith("matched nothing: fault wan never ended (it lasts to the end of the run): "
                                        "mark it background: true"), result.detail


def test_a_fault_the_runner_removed_at_the_end_never_ended(tmp_path: Path) -> None:
    """The runner stops every fault still active when the scenario's time is up, so a real journal has a
    fault.stop at the end for a whole-run fault: that is not the fault ending within the run."""
    events = []
    for e in wan_journal():
        if isinstance(e, FaultStarted | FaultStopped):
            e = e.model_copy(update={"background": False})
        events.append(e)
    events.append(FaultStopped(t=420.0, fault_id="f1", fault="net_latency", target="medplum", name="wan"))
    results = judge(tmp_path, WAN.replace("BACKGROUND", "false"), events)
    recovery = results["recovery_time[medplum]"]
    assert (recovery.verdict, recovery.matched) == ("fail", 0)
    assert recovery.detail.startswith("matched nothing: fault wan never ended"), recovery.detail


ANCHORED = """name: anchored
description: d
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 7m
workload:
  - {operation: read_patient, vendor: medplum, rate: 1/s}
faults:
  - {kind: outage, target: medplum, at: 1m, for: 2m, name: first}
  - {kind: outage, target: medplum, at: 4m, for: 1m, name: second}
expectations:
  - {check: breaker_opens, vendor: medplum, fault: second, within: 30s}
  - {check: recovery_time, vendor: medplum, fault: first, max: 30s, stable_for: 20s}
  - check: success_rate
    vendor: medplum
    min: 100%
    outside_faults: false
    between: ["first end + 10s", "second start"]
  - {check: events, kind: operation, where: {ok: false}, between: ["first end", "first end + 5s"], min: 1}
  - {check: sla_band, sla: 000-7-success-rate, vendor: medplum, after: "second end + 30s"}
"""


def anchored_journal(*, second_ends: bool = True) -> list[Event]:
    # measured times, as a real-mode journal has them: each fault switched a little late
    ops = [op(float(t), ok=not (61 <= t < 183 or 241 <= t < 303)) for t in range(0, 420)]
    return journal(420, fault("f1", "outage", "medplum", 61.0, 181.4, name="first"),
                   fault("f2", "outage", "medplum", 241.0, 301.0 if second_ends else None, name="second"), ops,
                   [br(70.0, "CLOSED", "OPEN", "medplum"), br(130.0, "OPEN", "HALF_OPEN", "medplum"),
                    br(131.0, "HALF_OPEN", "CLOSED", "medplum"), br(250.0, "CLOSED", "OPEN", "medplum")])


def test_checks_anchored_to_a_named_fault_use_its_measured_times(tmp_path: Path) -> None:
    results = judge(tmp_path, ANCHORED, anchored_journal())
    opens = results["breaker_opens[medplum]"]
    assert (opens.verdict, opens.observed) == ("pass", 9.0)  # 250 - 241: the second fault, not the first
    recovery = results["recovery_time[medplum]"]
    assert (recovery.verdict, recovery.observed) == ("pass", 1.62)  # 183.02 - 181.4, the measured end
    between = results["success_rate[medplum]"]
    assert (between.verdict, between.matched) == ("pass", 241 - 192)  # started 191.4 <= t < 241
    window = results["events[operation,ok=False]"]
    assert (window.verdict, window.matched) == ("pass", 1)  # the op ended at 182.02 (181.4 <= t < 186.4)
    band = results["sla_band[000-7-success-rate,medplum]"]
    assert band.verdict == "pass", band.detail


def test_an_anchor_that_never_came_matches_nothing(tmp_path: Path) -> None:
    results = judge(tmp_path, ANCHORED, anchored_journal(second_ends=False))
    band = results["sla_band[000-7-success-rate,medplum]"]
    assert (band.verdict, band.matched) == ("fail", 0)
    assert band.detail == "matched nothing: fault second never ended, so 'second end + 30s' never came"


def no_unexpected(events: list[Event]) -> CheckResult:
    *_, automatic = evaluate_all([], events, SOURCE)
    assert automatic.name == "no_unexpected_errors"
    return automatic


def test_an_untyped_exception_fails_the_run_naming_classes_and_counts() -> None:
    ok = [op(float(t), vendor="epic") for t in range(10)]
    typed = no_unexpected(journal(60, ok, [op(20.0, False, "epic", "FailoverExhausted")]))
    assert (typed.verdict, typed.matched, typed.observed) == ("pass", 11, 0)
    assert typed.detail.startswith("no Unexpected* error in 11 operation(s)")
    bad = journal(60, ok, [op(20.0 + i, False, "epic", "UnexpectedFailoverExhausted") for i in range(3)],
                  [op(30.0, False, "epic", "UnexpectedKeyError")])
    result = no_unexpected(bad)
    assert (result.verdict, result.observed) == ("fail", 4)
    assert result.detail == ("untyped exceptions in the system under test: UnexpectedFailoverExhausted x3 (first in "
                             "operation at 20.02s); UnexpectedKeyError x1 (first in operation at 30.02s)")


def test_the_automatic_check_comes_after_the_scenarios_own() -> None:
    spec: Any = None
    from harness.checks.models import SuccessRate

    spec = SuccessRate(check="success_rate", min=0.5)
    names = [r.name for r in evaluate_all([spec], journal(60, [op(1.0)]), SOURCE)]
    assert names == ["success_rate", "no_unexpected_errors"]


def test_a_named_fault_that_never_ended_cannot_be_recovered_from() -> None:
    from harness.checks.models import RecoveryTime

    spec = RecoveryTime(check="recovery_time", vendor="medplum", max=30.0, fault="wan")
    [result] = evaluate([spec], wan_journal(), SOURCE)
    assert (result.verdict, result.detail) == ("fail", "matched nothing: fault wan never ended (it lasts to the end "
                                                       "of the run)")
