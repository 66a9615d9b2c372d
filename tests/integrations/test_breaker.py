"""The circuit breaker: resilience4j semantics (practice.md §5.1) and runbook 000_030ea53f0735abf7.txt §2's
half-open after 60 s, on the virtual clock."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import BreakerState, BreakerTransitioned, IntegrationEvent
from integrations.fhir import (
    AuthError,
    BreakerConfig,
    CircuitBreaker,
    CircuitOpen,
    Conflict,
    ConnectionFailed,
    Forbidden,
    MalformedResponse,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    ServerError,
    ValidationFailed,
    provider_failure,
)

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN


class Recorder:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.transitions: list[tuple[float, BreakerTransitioned]] = []

    def __call__(self, event: IntegrationEvent) -> None:
        assert isinstance(event, BreakerTransitioned)
        self.transitions.append((self.clock.monotonic(), event))

    def states(self) -> list[tuple[BreakerState, BreakerState]]:
        return [(e.from_state, e.to_state) for _, e in self.transitions]


def calls(breaker: CircuitBreaker, outcomes: str) -> None:
    """Run one call per character: F a failure, S a success."""
    for outcome in outcomes:
        permit = breaker.acquire()
        if outcome == "F":
            breaker.record_failure(permit)
        else:
            breaker.record_success(permit)


def test_does_not_open_below_minimum_calls_even_if_all_failed() -> None:
    async def main() -> tuple[BreakerState, BreakerState]:
        breaker = CircuitBreaker("ehr", VirtualClock())
        calls(breaker, "F" * 9)
        before = breaker.state
        calls(breaker, "F")
        after = breaker.state
        await breaker.aclose()
        return before, after

    assert run_virtual(main) == (CLOSED, OPEN)


@pytest.mark.parametrize(("outcomes", "state"), [
    ("SSSSSFFFFF", OPEN),  # 50 %: >= threshold opens
    ("SSSSSSFFFF", CLOSED),  # 40 %
    ("S" * 20 + "FFFFFFFFF", CLOSED),  # 9 of the last 20
    ("S" * 20 + "FFFFFFFFFF", OPEN),  # 10 of the last 20: the window slides
])
def test_opens_at_failure_rate_threshold_over_the_window(outcomes: str, state: BreakerState) -> None:
    async def main() -> BreakerState:
        breaker = CircuitBreaker("ehr", VirtualClock())
        calls(breaker, outcomes)
        await breaker.aclose()
        return breaker.state

    assert run_virtual(main) is state


def test_open_breaker_fails_fast_with_time_left() -> None:
    async def main() -> CircuitOpen:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock)
        calls(breaker, "F" * 10)
        await clock.sleep(15)
        with pytest.raises(CircuitOpen) as caught:
            breaker.acquire("cid-1")
        await breaker.aclose()
        return caught.value

    error = run_virtual(main)
    assert error.retry_after_s == pytest.approx(45.0)
    assert error.correlation_id == "cid-1"
    assert error.vendor == "ehr"
    assert not error.retryable


def test_half_open_exactly_60_s_after_opening_without_traffic() -> None:
    async def main() -> tuple[list[tuple[float, BreakerTransitioned]], BreakerState, BreakerState]:
        clock = VirtualClock()
        recorder = Recorder(clock)
        breaker = CircuitBreaker("ehr", clock, listener=recorder)
        await clock.sleep(5)
        calls(breaker, "F" * 10)  # opens at t=5
        await clock.sleep(59.999)
        just_before = breaker.state
        await clock.sleep(0.001)
        at_60 = breaker.state
        await breaker.aclose()
        return recorder.transitions, just_before, at_60

    transitions, just_before, at_60 = run_virtual(main)
    assert (just_before, at_60) == (OPEN, HALF_OPEN)
    assert [(t, e.from_state, e.to_state) for t, e in transitions] == [(5.0, CLOSED, OPEN), (65.0, OPEN, HALF_OPEN)]
    opened = transitions[0][1]
    assert (opened.failure_rate, opened.calls) == (1.0, 10)
    assert (transitions[1][1].failure_rate, transitions[1][1].calls) == (None, 0)  # the window was cleared


def test_half_open_permits_exactly_the_configured_calls() -> None:
    async def main() -> int:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock)
        calls(breaker, "F" * 10)
        await clock.sleep(60)
        permits = [breaker.acquire() for _ in range(3)]
        with pytest.raises(CircuitOpen):
            breaker.acquire()
        breaker.release(permits[0])  # a cancelled trial gives its slot back
        breaker.acquire()
        with pytest.raises(CircuitOpen):
            breaker.acquire()
        await breaker.aclose()
        return len(permits)

    assert run_virtual(main) == 3


@pytest.mark.parametrize(("trials", "final", "rate"), [
    ("SSS", CLOSED, 0.0),
    ("SSF", CLOSED, 1 / 3),
    ("SFF", OPEN, 2 / 3),
    ("FFF", OPEN, 1.0),
])
def test_half_open_outcome_decides(trials: str, final: BreakerState, rate: float) -> None:
    async def main() -> tuple[BreakerState, list[tuple[float, BreakerTransitioned]]]:
        clock = VirtualClock()
        recorder = Recorder(clock)
        breaker = CircuitBreaker("ehr", clock, listener=recorder)
        calls(breaker, "F" * 10)
        await clock.sleep(60)
        calls(breaker, trials[:2])
        still = breaker.state  # no decision before all permitted calls have an outcome
        calls(breaker, trials[2:])
        await breaker.aclose()
        assert still is HALF_OPEN
        return breaker.state, recorder.transitions

    state, transitions = run_virtual(main)
    assert state is final
    last = transitions[-1][1]
    assert (last.from_state, last.to_state, last.calls) == (HALF_OPEN, final, 3)
    assert last.failure_rate == pytest.approx(rate)


def test_reopened_breaker_half_opens_again_60_s_later() -> None:
    async def main() -> list[tuple[float, BreakerState]]:
        clock = VirtualClock()
        recorder = Recorder(clock)
        breaker = CircuitBreaker("ehr", clock, listener=recorder)
        calls(breaker, "F" * 10)  # t=0
        await clock.sleep(60)
        await clock.sleep(2)
        calls(breaker, "FFF")  # t=62: back to OPEN
        await clock.sleep(120)
        await breaker.aclose()
        return [(t, e.to_state) for t, e in recorder.transitions]

    assert run_virtual(main) == [(0.0, OPEN), (60.0, HALF_OPEN), (62.0, OPEN), (122.0, HALF_OPEN)]


def test_closed_after_half_open_counts_from_an_empty_window() -> None:
    async def main() -> BreakerState:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock)
        calls(breaker, "F" * 10)
        await clock.sleep(60)
        calls(breaker, "SSS")
        calls(breaker, "F" * 9)  # 9 failures in a fresh window: below minimum_calls
        await breaker.aclose()
        return breaker.state

    assert run_virtual(main) is CLOSED


def test_outcomes_of_calls_started_before_a_transition_are_ignored() -> None:
    async def main() -> tuple[BreakerState, int]:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock)
        stale = [breaker.acquire() for _ in range(5)]  # in flight while the breaker opens
        calls(breaker, "F" * 10)
        await clock.sleep(60)
        for permit in stale:
            breaker.record_failure(permit)  # must not decide the half-open trial
        await breaker.aclose()
        return breaker.state, breaker.calls

    assert run_virtual(main) == (HALF_OPEN, 0)


def test_a_permit_is_settled_once() -> None:
    async def main() -> None:
        breaker = CircuitBreaker("ehr", VirtualClock())
        permit = breaker.acquire()
        breaker.record_success(permit)
        with pytest.raises(RuntimeError, match="already settled"):
            breaker.record_failure(permit)
        await breaker.aclose()

    run_virtual(main)


def test_manual_transitions_and_timer_cancellation() -> None:
    async def main() -> list[tuple[float, BreakerState, BreakerState]]:
        clock = VirtualClock()
        recorder = Recorder(clock)
        breaker = CircuitBreaker("ehr", clock, listener=recorder)
        breaker.transition_to(OPEN)
        await clock.sleep(10)
        breaker.transition_to(HALF_OPEN)  # runbook 000 §2: manual reset once the provider is healthy
        breaker.transition_to(HALF_OPEN)  # same state: no event
        breaker.transition_to(OPEN)  # t=10: a new 60 s
        await clock.sleep(30)
        breaker.transition_to(CLOSED)  # cancels the timer: no HALF_OPEN at t=70
        await clock.sleep(100)
        breaker.transition_to(OPEN)  # t=140
        await breaker.aclose()  # cancels the timer; the breaker stays OPEN
        await clock.sleep(100)
        return [(t, e.from_state, e.to_state) for t, e in recorder.transitions]

    assert run_virtual(main) == [
        (0.0, CLOSED, OPEN), (10.0, OPEN, HALF_OPEN), (10.0, HALF_OPEN, OPEN), (40.0, OPEN, CLOSED),
        (140.0, CLOSED, OPEN),
    ]


def test_acquire_half_opens_when_the_wait_is_over_even_without_the_timer() -> None:
    async def main() -> BreakerState:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock)
        calls(breaker, "F" * 10)
        await breaker.aclose()  # no timer any more
        await clock.sleep(60)
        breaker.acquire()
        return breaker.state

    assert run_virtual(main) is HALF_OPEN


def test_record_classifies_with_the_config_predicate() -> None:
    async def main() -> list[tuple[bool, float | None]]:
        results = []
        for error in (ServerError("x", vendor="v", status=503), ValidationFailed("x", vendor="v", status=400),
                      ValueError("bug")):
            breaker = CircuitBreaker("ehr", VirtualClock(), BreakerConfig(minimum_calls=1, window_size=1))
            breaker.record(breaker.acquire(), error)
            results.append((breaker.state is OPEN, breaker.failure_rate))
            await breaker.aclose()
        return results

    # a 5xx fails; a 4xx is a success (the provider answered); an unknown exception is released
    assert run_virtual(main) == [(True, None), (False, 0.0), (False, None)]


@pytest.mark.parametrize(("error", "is_failure"), [
    (ServerError("x", vendor="v", status=500), True),
    (RequestTimeout("x", vendor="v"), True),
    (ConnectionFailed("x", vendor="v"), True),
    (MalformedResponse("x", vendor="v", status=200), True),
    (ServerError("x", vendor="v", status=503, token_endpoint=True), True),
    (RequestTimeout("x", vendor="v", token_endpoint=True), True),
    (AuthError("x", vendor="v", status=401), False),
    (AuthError("x", vendor="v", status=400, token_endpoint=True, oauth_error="invalid_client"), False),
    (Forbidden("x", vendor="v", status=403), False),
    (NotFound("x", vendor="v", status=404), False),
    (ValidationFailed("x", vendor="v", status=422), False),
    (Conflict("x", vendor="v", status=409), False),
    (PreconditionFailed("x", vendor="v", status=412), False),
    (RateLimited("x", vendor="v", status=429), False),
])
def test_default_failure_predicate(error: Exception, is_failure: bool) -> None:
    assert provider_failure(error) is is_failure


@pytest.mark.parametrize("bad", [
    {"window_size": 0}, {"minimum_calls": 0}, {"failure_rate_threshold": 0.0}, {"failure_rate_threshold": 1.5},
    {"wait_in_open_s": -1.0}, {"permitted_half_open_calls": 0},
])
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BreakerConfig(**bad)  # type: ignore[arg-type]


def test_state_can_be_read_after_the_event_loop_is_gone() -> None:
    async def main() -> CircuitBreaker:
        breaker = CircuitBreaker("ehr", VirtualClock())
        calls(breaker, "F" * 10)
        await breaker.aclose()
        return breaker

    breaker = run_virtual(main)
    assert breaker.state is OPEN  # a report reading the breaker after the run must not crash
    assert breaker.calls == 0
