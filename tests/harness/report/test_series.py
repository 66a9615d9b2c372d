"""Series derived from hand-built journals: each series checked against values worked out by hand."""

from __future__ import annotations

import pytest

from harness.journal import FaultStarted, QueueEvent, ScenarioEnded, ScenarioStarted
from harness.report.series import (
    BreakerSpan,
    QueuePoint,
    breaker_lanes,
    bucket_width,
    buckets,
    derive,
    fault_windows,
    nearest_rank,
    queue_depth,
    split_scenarios,
)
from tests.harness.report.builders import breaker, check, job, op, outage_journal


def test_fault_windows_pair_start_and_stop_and_run_an_unstopped_fault_to_the_end() -> None:
    events = [*outage_journal(), FaultStarted(t=100.0, fault_id="f2", fault="latency", target="epic",
                                              params={"latency": 800})]
    windows = fault_windows(events, 120.0)
    assert [(w.fault_id, w.start, w.stop, w.stopped) for w in windows] == [("f1", 30.0, 60.0, True),
                                                                          ("f2", 100.0, 120.0, False)]
    assert windows[0].params == (("status", "503"),)
    assert windows[0].label() == "outage@medplum (f1)"  # an older journal's fault has no name: kind@target
    named = [*events, FaultStarted(t=110.0, fault_id="f3", fault="net_latency", target="epic", params={},
                                   name="wan", background=True)]
    last = fault_windows(named, 120.0)[-1]
    assert (last.title, last.label(), last.background) == ("wan", "wan (f3)", True)


def test_breaker_lane_spans_follow_the_transitions() -> None:
    [lane] = breaker_lanes(outage_journal(), 120.0)
    assert lane.breaker == "medplum"
    assert lane.transitions == 3
    assert lane.spans == (BreakerSpan("CLOSED", 0.0, 32.0), BreakerSpan("OPEN", 32.0, 92.0),
                          BreakerSpan("HALF_OPEN", 92.0, 93.0), BreakerSpan("CLOSED", 93.0, 120.0))


def test_breakers_get_one_lane_each_sorted_by_name() -> None:
    events = [breaker(5.0, "CLOSED", "OPEN", name="epic"), breaker(1.0, "CLOSED", "OPEN", name="cerner")]
    lanes = breaker_lanes(events, 10.0)
    assert [lane.breaker for lane in lanes] == ["cerner", "epic"]
    assert lanes[1].spans == (BreakerSpan("CLOSED", 0.0, 5.0), BreakerSpan("OPEN", 5.0, 10.0))


def test_success_rate_per_bucket() -> None:
    series = derive(split_scenarios(outage_journal())[0])
    assert series.bucket_s == 2.0
    assert len(series.buckets) == 60
    rates = [b.success_rate for b in series.buckets]
    assert rates[:15] == [1.0] * 15
    assert rates[15:30] == [0.0] * 15  # seconds 30..59 failed
    assert rates[30:] == [1.0] * 30
    assert all(b.total == 2 for b in series.buckets)


def test_a_bucket_without_operations_has_no_rate_and_the_end_counts_in_the_last_bucket() -> None:
    result = buckets([op(1.0), op(1.5, ok=False), op(30.0)], 30.0, 10.0)
    assert [(b.total, b.failed) for b in result] == [(2, 1), (0, 0), (1, 0)]
    assert result[0].success_rate == 0.5
    assert result[1].success_rate is None
    assert result[1].p50_ms is None


def test_latency_percentiles_are_nearest_rank_per_bucket() -> None:
    events = [op(0.5 + i * 0.01, duration_ms=float(20 - i)) for i in range(20)]  # 20, 19, ..., 1 ms
    events += [op(12.0, duration_ms=500.0)]
    first, second = buckets(events, 20.0, 10.0)
    assert (first.p50_ms, first.p95_ms, first.mean_ms) == (10.0, 19.0, 10.5)
    assert (second.p50_ms, second.p95_ms) == (500.0, 500.0)
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 95) == 4.0


@pytest.mark.parametrize(("end", "width"), [(30.0, 1.0), (60.0, 1.0), (61.0, 2.0), (420.0, 10.0), (3600.0, 60.0)])
def test_bucket_width_is_nice_and_gives_at_most_sixty_buckets(end: float, width: float) -> None:
    assert bucket_width(end) == width


def test_queue_depth_follows_each_job_through_its_states() -> None:
    events = [
        job(1.0, "job.added", "a", delay_s=0.0, attempts=3),
        job(2.0, "job.added", "b", delay_s=5.0, attempts=1),
        job(2.5, "job.duplicated", "a"),
        job(3.0, "job.started", "a", attempt=1, worker="w1"),
        job(4.0, "job.retry", "a", attempt=1, delay_s=1.0, error="ServerError", worker="w1"),
        job(5.0, "job.promoted", "a"),
        job(5.0, "job.promoted", "b"),
        job(6.0, "job.started", "a", attempt=2, worker="w1"),
        job(7.0, "job.completed", "a", attempt=2, worker="w1", duration_ms=5.0),
        job(8.0, "job.started", "b", attempt=1, worker="w1"),
        job(9.0, "job.failed", "b", attempts=1, error="ServerError", worker="w1"),
        job(10.0, "job.retried", "b"),
        job(11.0, "job.started", "b", attempt=1, worker="w1"),
        job(11.5, "job.stalled", "b", stalled_count=1, failed=False, worker="w2"),
        job(12.0, "job.started", "b", attempt=1, worker="w2"),
        job(12.5, "job.stalled", "b", stalled_count=2, failed=True, worker="w2"),
        QueueEvent(t=13.0, kind="queue.removed", queue="sync", state="failed", count=1, reason="clean"),
    ]
    got = [(p.t, p.waiting, p.delayed, p.active, p.failed) for p in queue_depth(events)]
    assert got == [
        (1.0, 1, 0, 0, 0), (2.0, 1, 1, 0, 0), (2.5, 1, 1, 0, 0), (3.0, 0, 1, 1, 0), (4.0, 0, 2, 0, 0),
        (5.0, 2, 0, 0, 0), (6.0, 1, 0, 1, 0), (7.0, 1, 0, 0, 0), (8.0, 0, 0, 1, 0), (9.0, 0, 0, 0, 1),
        (10.0, 1, 0, 0, 0), (11.0, 0, 0, 1, 0), (11.5, 1, 0, 0, 0), (12.0, 0, 0, 1, 0), (12.5, 0, 0, 0, 1),
        (13.0, 0, 0, 0, 0),
    ]
    assert queue_depth(outage_journal()) == ()
    assert isinstance(queue_depth(events)[0], QueuePoint)


def test_split_scenarios_cuts_at_each_start_and_gives_build_events_to_the_next() -> None:
    early, between = op(0.0, op_id=900), op(0.0, op_id=901)
    first = outage_journal("first", [check("breaker_opens[medplum]")])
    second = outage_journal("second", [check("latency")])
    journals = split_scenarios([early, *first, between, *second])
    assert [j.name for j in journals] == ["first", "second"]
    assert journals[0].events[0] == early
    assert journals[0].events[1:] == tuple(first)
    assert journals[1].events == (between, *second)
    assert (journals[0].duration_s, journals[0].end_s) == (120.0, 120.0)


def test_a_scenario_without_an_end_event_ends_with_its_last_event() -> None:
    events = [ScenarioStarted(t=0.0, scenario="s", file="s.yaml", seed=1, mode="virtual", duration_s=60.0),
              op(12.5)]
    [journal] = split_scenarios(events)
    assert journal.end_s == 12.5
    assert not any(isinstance(e, ScenarioEnded) for e in journal.events)
