"""Stateful property test of the circuit breaker against a model of resilience4j's semantics
(practice.md §5.1): random sequences of acquires, outcomes (fast or slow, failed or not), releases,
time jumps and operator actions, on one virtual-time loop. After every step the breaker's state and
its transition events must equal the model's: no illegal transition, OPEN exactly when the window
says, HALF_OPEN admits exactly the permitted calls, HALF_OPEN exactly 60 s after opening."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import looptime
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness.clock import VirtualClock
from integrations.events import BreakerState, BreakerTransitioned, IntegrationEvent
from integrations.fhir import BreakerConfig, CircuitBreaker, CircuitOpen, Permit

S = BreakerState
T = TypeVar("T")
WAIT_S = 60.0
SLOW_S = 5.0
AUTOMATIC = {(S.CLOSED, S.OPEN), (S.OPEN, S.HALF_OPEN), (S.HALF_OPEN, S.OPEN), (S.HALF_OPEN, S.CLOSED)}
Transition = tuple[float, BreakerState, BreakerState, bool, float | None, float | None, int]


@dataclass
class Model:
    """resilience4j's COUNT_BASED breaker, written as plainly as possible."""

    config: BreakerConfig
    state: BreakerState = S.CLOSED
    outcomes: list[tuple[bool, bool]] = field(default_factory=list)  # (failed, slow), oldest first
    generation: int = 0
    opened_at: float | None = None
    admitted: int = 0  # HALF_OPEN: trial calls handed out and not released
    transitions: list[Transition] = field(default_factory=list)

    def rates(self) -> tuple[float | None, float | None]:
        if not self.outcomes:
            return None, None
        n = len(self.outcomes)
        return sum(f for f, _ in self.outcomes) / n, sum(s for _, s in self.outcomes) / n

    def move(self, now: float, to: BreakerState, manual: bool = False) -> None:
        failure_rate, slow_rate = self.rates()
        self.transitions.append((now, self.state, to, manual, failure_rate, slow_rate, len(self.outcomes)))
        self.state, self.outcomes, self.admitted = to, [], 0
        self.generation += 1
        self.opened_at = now if to is S.OPEN else None

    def poll(self, now: float) -> None:
        if self.state is S.OPEN and self.opened_at is not None and now >= self.opened_at + WAIT_S:
            self.move(self.opened_at + WAIT_S, S.HALF_OPEN)

    def acquire(self) -> bool:
        if self.state in (S.OPEN, S.FORCED_OPEN):
            return False
        if self.state is S.HALF_OPEN:
            if self.admitted == self.config.permitted_half_open_calls:
                return False
            self.admitted += 1
        return True

    def too_bad(self) -> bool:
        failure_rate, slow_rate = self.rates()
        assert failure_rate is not None
        assert slow_rate is not None
        return failure_rate >= self.config.failure_rate_threshold or slow_rate >= self.config.slow_call_rate_threshold

    def settle(self, now: float, generation: int, failed: bool, slow: bool) -> None:
        if generation != self.generation or self.state is S.DISABLED:
            return
        self.outcomes.append((failed, slow))
        if self.state is S.CLOSED:
            self.outcomes = self.outcomes[-self.config.window_size:]
            if len(self.outcomes) >= min(self.config.minimum_calls, self.config.window_size) and self.too_bad():
                self.move(now, S.OPEN)
        elif len(self.outcomes) == self.config.permitted_half_open_calls:
            self.move(now, S.OPEN if self.too_bad() else S.CLOSED)

    def release(self, generation: int) -> None:
        if generation == self.generation and self.state is S.HALF_OPEN:
            self.admitted -= 1


@dataclass
class Held:
    permit: Permit
    acquired_at: float
    generation: int  # the model's generation when it was acquired


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = looptime.new_event_loop(start=0.0, noop_cycles=0, idle_timeout=1.0)
        self.clock = VirtualClock()
        self.seen: list[Transition] = []
        self.held: list[Held] = []
        self.breaker: CircuitBreaker | None = None
        self.model: Model | None = None

    def run(self, fn: Callable[[], T]) -> T:
        async def inside() -> T:
            return fn()

        return self.loop.run_until_complete(inside())

    def now(self) -> float:
        return self.run(self.clock.monotonic)

    def listen(self, event: IntegrationEvent) -> None:
        assert isinstance(event, BreakerTransitioned)
        self.seen.append((self.clock.monotonic(), event.from_state, event.to_state, event.manual,
                          event.failure_rate, event.slow_call_rate, event.calls))

    @initialize(window=st.integers(1, 6), minimum=st.integers(1, 8), failure=st.sampled_from([0.25, 0.5, 1.0]),
                half_open=st.integers(1, 4), slow=st.sampled_from([0.5, 1.0]))
    def build(self, window: int, minimum: int, failure: float, half_open: int, slow: float) -> None:
        config = BreakerConfig(window_size=window, minimum_calls=minimum, failure_rate_threshold=failure,
                               wait_in_open_s=WAIT_S, permitted_half_open_calls=half_open,
                               slow_call_duration_threshold_s=SLOW_S, slow_call_rate_threshold=slow)
        self.breaker = CircuitBreaker("m", self.clock, config, listener=self.listen)
        self.model = Model(config)

    def parts(self) -> tuple[CircuitBreaker, Model]:
        assert self.breaker is not None
        assert self.model is not None
        return self.breaker, self.model

    @rule()
    def acquire(self) -> None:
        breaker, model = self.parts()
        now = self.now()
        model.poll(now)
        expected = model.acquire()
        try:
            permit = self.run(breaker.acquire)
        except CircuitOpen:
            assert not expected, f"refused in {model.state}"
            return
        assert expected, f"admitted in {model.state}"
        self.held.append(Held(permit, now, model.generation))

    @rule(failed=st.booleans(), duration=st.sampled_from([0.0, 0.0, 5.0, 6.0]))
    def call(self, failed: bool, duration: float) -> None:
        """A whole call: acquire, take `duration` (slow above 5 s), record the outcome."""
        self.acquire()
        if self.held and self.held[-1].acquired_at == self.now():
            self.advance(duration)
            self.settle(len(self.held) - 1, failed)

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, 99), failed=st.booleans())
    def settle(self, pick: int, failed: bool) -> None:
        breaker, model = self.parts()
        held = self.held.pop(pick % len(self.held))
        now = self.now()
        model.poll(now)
        model.settle(now, held.generation, failed, now - held.acquired_at > SLOW_S)
        self.run(lambda: (breaker.record_failure if failed else breaker.record_success)(held.permit))

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, 99))
    def release(self, pick: int) -> None:
        breaker, model = self.parts()
        held = self.held.pop(pick % len(self.held))
        model.poll(self.now())
        model.release(held.generation)
        self.run(lambda: breaker.release(held.permit))

    @rule(seconds=st.sampled_from([0.5, 5.5, 20.0, 59.5, 60.0, 60.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.loop.run_until_complete(self.clock.sleep(seconds))

    @rule(action=st.sampled_from(["force_open", "disable", "reset", S.OPEN, S.CLOSED, S.HALF_OPEN]))
    def operator(self, action: str) -> None:
        breaker, model = self.parts()
        now = self.now()
        model.poll(now)
        named = {"force_open": (S.FORCED_OPEN, breaker.force_open), "disable": (S.DISABLED, breaker.disable),
                 "reset": (S.CLOSED, breaker.reset)}
        if action in named:
            target, operate = named[action]
        else:
            target = S(action)
            operate = lambda: breaker.transition_to(target)  # noqa: E731
        if action == "reset" or target is not model.state:
            model.move(now, target, manual=True)
        self.run(operate)

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.breaker is None or self.model is None:
            return
        breaker, model = self.parts()
        model.poll(self.now())
        assert self.run(lambda: breaker.state) is model.state
        assert self.seen == model.transitions

    @invariant()
    def transitions_are_legal(self) -> None:
        for _, from_state, to_state, manual, *_ in self.seen:
            assert manual or (from_state, to_state) in AUTOMATIC, f"illegal {from_state} -> {to_state}"

    @invariant()
    def half_open_admits_only_the_permitted_calls(self) -> None:
        if self.model is not None and self.model.state is S.HALF_OPEN:
            in_flight = sum(1 for h in self.held if h.generation == self.model.generation)
            assert in_flight <= self.model.config.permitted_half_open_calls

    def teardown(self) -> None:
        if self.breaker is not None:
            self.loop.run_until_complete(self.breaker.aclose())
        self.loop.run_until_complete(self.clock.sleep(0))  # let cancelled tasks finish
        self.loop.close()


BreakerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestBreakerAgainstModel = BreakerMachine.TestCase


def test_the_model_catches_a_wrong_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine is not vacuous: a breaker that opens one call late is caught."""
    original = CircuitBreaker._exceeded

    def late(self: CircuitBreaker) -> bool:
        return original(self) and len(self._window) > min(self.config.minimum_calls, self.config.window_size)

    monkeypatch.setattr(CircuitBreaker, "_exceeded", late)
    with pytest.raises(AssertionError):  # found without shrinking, which would take far longer
        run_state_machine_as_test(BreakerMachine, settings=settings(
            max_examples=200, stateful_step_count=40, deadline=None, database=None, phases=[Phase.generate],
            suppress_health_check=[HealthCheck.too_slow]))
