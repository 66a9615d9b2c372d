"""The breaker's slow-call threshold and its operator controls (resilience4j's slowCallDurationThreshold /
slowCallRateThreshold, FORCED_OPEN, DISABLED, reset; practice.md §5.1), on the virtual clock."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import BreakerState, BreakerTransitioned, IntegrationEvent
from integrations.fhir import BreakerConfig, CircuitBreaker, CircuitOpen

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN
FORCED_OPEN, DISABLED = BreakerState.FORCED_OPEN, BreakerState.DISABLED
SLOW = BreakerConfig(window_size=4, minimum_calls=4, slow_call_duration_threshold_s=2.0, slow_call_rate_threshold=0.5)


async def call(clock: VirtualClock, breaker: CircuitBreaker, seconds: float, *, failed: bool = False) -> None:
    permit = breaker.acquire()
    await clock.sleep(seconds)
    (breaker.record_failure if failed else breaker.record_success)(permit)


@pytest.mark.parametrize(("durations", "state", "slow_rate"), [
    ((2.0, 2.0, 2.0, 2.0), CLOSED, 0.0),  # exactly the threshold is not slow (resilience4j: duration > threshold)
    ((2.001, 0.1, 0.1, 0.1), CLOSED, 0.25),  # 25 % slow: below 50 %
    ((2.001, 3.0, 0.1, 0.1), OPEN, 0.5),  # 50 % slow: >= the slow-call rate threshold opens, all calls succeeded
    ((2.001, 3.0, 0.1), CLOSED, 2 / 3),  # 3 calls: below minimum_calls, whatever the rate
])
def test_slow_calls_open_the_breaker_on_their_own(durations: tuple[float, ...], state: BreakerState,
                                                   slow_rate: float) -> None:
    async def main() -> tuple[BreakerState, list[BreakerTransitioned], float | None]:
        clock = VirtualClock()
        seen: list[BreakerTransitioned] = []
        breaker = CircuitBreaker("ehr", clock, SLOW, listener=lambda e: seen.append(e))
        for seconds in durations:
            await call(clock, breaker, seconds)
        rate = breaker.slow_call_rate
        await breaker.aclose()
        return breaker.state, seen, rate

    final, seen, rate = run_virtual(main)
    assert final is state
    if state is OPEN:
        assert (seen[0].failure_rate, seen[0].slow_call_rate, seen[0].manual) == (0.0, slow_rate, False)
    else:
        assert rate == pytest.approx(slow_rate)


def test_slow_half_open_trials_reopen_the_breaker() -> None:
    async def main() -> list[BreakerState]:
        clock = VirtualClock()
        config = BreakerConfig(window_size=2, minimum_calls=2, permitted_half_open_calls=2,
                               slow_call_duration_threshold_s=1.0, slow_call_rate_threshold=1.0)
        breaker = CircuitBreaker("ehr", clock, config)
        states = []
        for _ in range(2):
            await call(clock, breaker, 1.5)
        states.append(breaker.state)  # OPEN: every call slow
        await clock.sleep(60)
        await call(clock, breaker, 1.5)
        await call(clock, breaker, 1.5, failed=True)  # slow and failed: both rates count it
        states.append(breaker.state)  # OPEN again
        await clock.sleep(60)
        await call(clock, breaker, 1.5)
        await call(clock, breaker, 0.5)  # 50 % slow < 100 %
        states.append(breaker.state)
        await breaker.aclose()
        return states

    assert run_virtual(main) == [OPEN, OPEN, CLOSED]


def test_half_open_window_is_the_permitted_calls_even_when_larger_than_the_window() -> None:
    async def main() -> list[BreakerState]:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock, BreakerConfig(window_size=2, minimum_calls=2,
                                                             permitted_half_open_calls=5))
        for _ in range(2):
            await call(clock, breaker, 0, failed=True)
        await clock.sleep(60)
        states = []
        for _ in range(5):
            await call(clock, breaker, 0)
            states.append(breaker.state)
        await breaker.aclose()
        return states

    assert run_virtual(main) == [HALF_OPEN] * 4 + [CLOSED]


def test_force_open_refuses_everything_until_reset_and_never_half_opens() -> None:
    async def main() -> tuple[list[tuple[float, BreakerState, BreakerState, bool]], CircuitOpen, BreakerState]:
        clock = VirtualClock()
        seen: list[tuple[float, BreakerState, BreakerState, bool]] = []

        def listen(event: IntegrationEvent) -> None:
            assert isinstance(event, BreakerTransitioned)
            seen.append((clock.monotonic(), event.from_state, event.to_state, event.manual))

        breaker = CircuitBreaker("ehr", clock, listener=listen)
        in_flight = breaker.acquire()
        breaker.force_open()
        breaker.force_open()  # already there: nothing
        await clock.sleep(600)  # no timer: still forced open
        with pytest.raises(CircuitOpen) as refused:
            breaker.acquire("cid-9")
        breaker.record_failure(in_flight)  # a call from before: ignored
        breaker.reset()  # t=600
        after = breaker.state
        calls_after = breaker.calls
        breaker.reset()  # CLOSED -> CLOSED: journaled, the window thrown away
        await breaker.aclose()
        assert calls_after == 0
        return seen, refused.value, after

    seen, refused, after = run_virtual(main)
    assert seen == [(0.0, CLOSED, FORCED_OPEN, True), (600.0, FORCED_OPEN, CLOSED, True), (600.0, CLOSED, CLOSED, True)]
    assert refused.retry_after_s is None
    assert refused.correlation_id == "cid-9"
    assert "operator" in str(refused)
    assert after is CLOSED


def test_disabled_permits_everything_and_records_nothing() -> None:
    async def main() -> tuple[BreakerState, int, BreakerState]:
        clock = VirtualClock()
        breaker = CircuitBreaker("ehr", clock, BreakerConfig(window_size=2, minimum_calls=2))
        breaker.disable()
        for _ in range(50):
            await call(clock, breaker, 100.0, failed=True)
        state, calls = breaker.state, breaker.calls
        breaker.reset()
        for _ in range(2):
            await call(clock, breaker, 0, failed=True)
        await breaker.aclose()
        return state, calls, breaker.state

    assert run_virtual(main) == (DISABLED, 0, OPEN)


def test_subscribers_hear_every_transition_after_the_listener() -> None:
    async def main() -> list[str]:
        order: list[str] = []
        breaker = CircuitBreaker("ehr", VirtualClock(), BreakerConfig(window_size=1, minimum_calls=1),
                                 listener=lambda e: order.append(f"listener {e.to_state}"))
        breaker.subscribe(lambda e: order.append(f"first {e.to_state}"))
        breaker.subscribe(lambda e: order.append(f"second {e.to_state}"))
        breaker.record_failure(breaker.acquire())
        breaker.reset()
        await breaker.aclose()
        return order

    assert run_virtual(main) == ["listener OPEN", "first OPEN", "second OPEN",
                                 "listener CLOSED", "first CLOSED", "second CLOSED"]


@pytest.mark.parametrize("bad", [
    {"slow_call_duration_threshold_s": 0.0}, {"slow_call_rate_threshold": 0.0}, {"slow_call_rate_threshold": 1.01},
])
def test_slow_call_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BreakerConfig(**bad)


def test_default_slow_call_settings_are_resilience4js() -> None:
    config = BreakerConfig()
    assert (config.slow_call_duration_threshold_s, config.slow_call_rate_threshold) == (60.0, 1.0)
