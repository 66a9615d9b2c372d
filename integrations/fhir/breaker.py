"""A circuit breaker per provider with resilience4j's semantics, on the injected clock.

Hand-written, not a library: the Python breakers (pybreaker, aiobreaker, purgatory, circuitbreaker)
count consecutive failures and read the system clock, so they neither implement resilience4j's
failure-rate window, slow-call rate, minimum calls and N half-open trial calls, nor run in virtual
time (`../shared/reference/practice.md §5.3`). Config names and semantics follow resilience4j's
`CircuitBreakerConfig` and `CircuitBreakerMetrics` (practice.md §5.1):

- CLOSED: every call is permitted; outcomes go into a count-based window of the last `window_size`
  calls. Once it holds at least `minimum_calls` outcomes (capped at `window_size`), the breaker
  opens if the failure rate is `>= failure_rate_threshold` or the slow-call rate is `>=
  slow_call_rate_threshold` ("if only 9 calls have been recorded, the CircuitBreaker will not
  transition to open, even if all 9 calls have failed"). A call is slow when it took strictly longer
  than `slow_call_duration_threshold_s` from `acquire()` to its outcome, failed or not (resilience4j
  `onSuccess`/`onError`: `duration > slowCallDurationThreshold`).
- OPEN: every call is refused with `CircuitOpen`. Exactly `wait_in_open_s` after opening (60 s,
  runbook `000_030ea53f0735abf7.txt §2`: "Wait for half-open transition (60 seconds default)"), a timer
  task on the clock moves it to HALF_OPEN, with or without traffic (resilience4j's
  `automaticTransitionFromOpenToHalfOpenEnabled`), so the lab can check the 60 s. Reading `state`
  (or calling `acquire`) at or after that instant applies the transition too, so no observer woken
  at the same instant as the timer sees OPEN.
- HALF_OPEN: exactly `permitted_half_open_calls` calls are let through, into a window of that size;
  further calls are refused. When all of them have an outcome, the breaker opens again if either rate
  is `>=` its threshold, and closes otherwise.
- FORCED_OPEN (operator, `force_open()`): every call refused, no timer; it stays until an operator
  moves it (`reset()` or `transition_to`). resilience4j's `transitionToForcedOpenState`.
- DISABLED (operator, `disable()`): every call permitted, no outcome recorded, no transition on its
  own. resilience4j's `transitionToDisabledState`.

Every transition clears the window and emits `BreakerTransitioned` with the failure and slow-call
rates and the number of calls of the window it is leaving; transitions an operator asked for
(`transition_to`, `force_open`, `disable`, `reset`) carry `manual=True`. `reset()` (resilience4j
`reset`, runbook 000 §2 "manually reset if Epic is confirmed healthy") always emits one, CLOSED ->
CLOSED included, because it throws the window away. Besides the constructor's listener, `subscribe`
adds observers of transitions (the provider monitor and the fallback use it).

Outcomes are recorded against the `Permit` that `acquire()` returned. A permit from an earlier state
(a call that started before the breaker opened and ended after) is ignored: the window it belonged
to was cleared. What counts as a failure is `BreakerConfig.is_failure`; by default a provider that
answers (any 4xx, including 401/409/412/429) is healthy, and a 5xx, a timeout, a dropped connection
or a malformed body is a failure. `release()` hands a permit back without an outcome (a cancelled
call), so a cancelled half-open trial does not stall the breaker.

All methods must be called from the event loop's thread; `record_*` and transitions to OPEN must
run inside the event loop (they start the timer task). Call `aclose()` to cancel the timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from integrations.clock import Clock
from integrations.events import BreakerState, BreakerTransitioned, EventListener, ignore_event
from integrations.fhir.errors import (
    CircuitOpen,
    ConnectionFailed,
    ConnectorError,
    MalformedResponse,
    RequestTimeout,
    ServerError,
)

logger = logging.getLogger(__name__)

#: States in which `acquire()` refuses every call.
REFUSING = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN})


def provider_failure(error: BaseException) -> bool:
    """The default `is_failure`: the provider failed (5xx, timeout, transport, malformed body).

    A 4xx of any kind means the provider answered and is up, so it counts as a success; an `AuthError`
    never counts. The token endpoint failing (5xx, no answer, no usable token) raises the same classes
    as a FHIR call (`ServerError` ... with `token_endpoint=True`), so it counts like one.
    """
    return isinstance(error, ServerError | RequestTimeout | ConnectionFailed | MalformedResponse)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """resilience4j's COUNT_BASED configuration, with the lab's defaults.

    The slow-call defaults are resilience4j's (60 s, 100 %): with the connector's 10 s attempt timeout
    they never open the breaker unless a caller lowers them.
    """

    window_size: int = 20
    minimum_calls: int = 10  # capped at window_size, as in resilience4j
    failure_rate_threshold: float = 0.5  # open when the failure rate is >= this
    wait_in_open_s: float = 60.0  # runbook 000_030ea53f0735abf7.txt §2
    permitted_half_open_calls: int = 3
    is_failure: Callable[[BaseException], bool] = field(default=provider_failure)
    slow_call_duration_threshold_s: float = 60.0  # a call is slow when it took strictly longer than this
    slow_call_rate_threshold: float = 1.0  # open when the slow-call rate is >= this

    def __post_init__(self) -> None:
        if self.window_size < 1:
            raise ValueError("window_size must be at least 1")
        if self.minimum_calls < 1:
            raise ValueError("minimum_calls must be at least 1")
        if not 0.0 < self.failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if self.wait_in_open_s < 0:
            raise ValueError("wait_in_open_s must not be negative")
        if self.permitted_half_open_calls < 1:
            raise ValueError("permitted_half_open_calls must be at least 1")
        if self.slow_call_duration_threshold_s <= 0:
            raise ValueError("slow_call_duration_threshold_s must be positive")
        if not 0.0 < self.slow_call_rate_threshold <= 1.0:
            raise ValueError("slow_call_rate_threshold must be in (0, 1]")


class Permit:
    """Permission for one call, from `CircuitBreaker.acquire()`; settle it exactly once."""

    __slots__ = ("_generation", "_settled", "_started")

    def __init__(self, generation: int, started: float | None = None) -> None:
        self._generation = generation
        self._settled = False
        self._started = started  # clock.monotonic() at acquire, for the slow-call rate

    def __repr__(self) -> str:
        return f"Permit(generation={self._generation}, settled={self._settled})"


TransitionObserver = Callable[[BreakerTransitioned], None]


class CircuitBreaker:
    """CLOSED / OPEN / HALF_OPEN (+ FORCED_OPEN / DISABLED) over a count-based window; see the module docstring."""

    def __init__(self, name: str, clock: Clock, config: BreakerConfig | None = None,
                 listener: EventListener = ignore_event) -> None:
        self.name = name
        self.config = config if config is not None else BreakerConfig()
        self._clock = clock
        self._listener = listener
        self._observers: list[TransitionObserver] = []
        self._state = BreakerState.CLOSED
        self._generation = 0  # bumped on every transition; permits from older generations are ignored
        self._window: deque[tuple[bool, bool]] = deque(maxlen=self.config.window_size)  # (failed, slow)
        self._half_open_issued = 0
        self._opened_at: float | None = None
        self._timer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self._state.value})"

    @property
    def state(self) -> BreakerState:
        self._poll()
        return self._state

    @property
    def calls(self) -> int:
        """Outcomes in the current window."""
        self._poll()
        return len(self._window)

    @property
    def failure_rate(self) -> float | None:
        """Failure rate over the current window; None while it is empty."""
        self._poll()
        return self._rate(0)

    @property
    def slow_call_rate(self) -> float | None:
        """Share of the current window's calls that were slow; None while it is empty."""
        self._poll()
        return self._rate(1)

    def subscribe(self, observer: TransitionObserver) -> None:
        """Call `observer` after the listener on every transition (in subscription order)."""
        self._observers.append(observer)

    def acquire(self, correlation_id: str | None = None) -> Permit:
        """Permission for one call, or `CircuitOpen` (nothing may be sent)."""
        self._poll()
        if self._state is BreakerState.OPEN:
            remaining = None
            if self._opened_at is not None:
                remaining = max(0.0, self._opened_at + self.config.wait_in_open_s - self._clock.monotonic())
            raise CircuitOpen("circuit breaker is OPEN; call not sent", vendor=self.name,
                              correlation_id=correlation_id, retry_after_s=remaining)
        if self._state is BreakerState.FORCED_OPEN:
            raise CircuitOpen("circuit breaker was forced open by an operator; call not sent", vendor=self.name,
                              correlation_id=correlation_id)
        if self._state is BreakerState.HALF_OPEN:
            if self._half_open_issued >= self.config.permitted_half_open_calls:
                raise CircuitOpen("circuit breaker is HALF_OPEN and its trial calls are in flight; call not sent",
                                  vendor=self.name, correlation_id=correlation_id)
            self._half_open_issued += 1
        return Permit(self._generation, self._now())

    def record_success(self, permit: Permit) -> None:
        self._settle(permit, failure=False)

    def record_failure(self, permit: Permit) -> None:
        self._settle(permit, failure=True)

    def release(self, permit: Permit) -> None:
        """Give the permit back without an outcome (the call was cancelled or never completed)."""
        if not self._take(permit):
            return
        if self._state is BreakerState.HALF_OPEN:
            self._half_open_issued -= 1

    def record(self, permit: Permit, error: BaseException | None) -> None:
        """Settle `permit` from a call's outcome: None is a success, `config.is_failure` a failure, any
        other `ConnectorError` a success (the provider answered), anything else is released."""
        if error is None:
            self.record_success(permit)
        elif self.config.is_failure(error):
            self.record_failure(permit)
        elif isinstance(error, ConnectorError):
            self.record_success(permit)
        else:
            self.release(permit)

    # -- operator control --------------------------------------------------------------------------

    def transition_to(self, state: BreakerState) -> None:
        """Move to `state` now (runbook 000_030ea53f0735abf7.txt §2: "manually reset if Epic is confirmed
        healthy"); nothing happens if the breaker is already there. A manual OPEN half-opens after
        `wait_in_open_s` like an automatic one."""
        self._poll()
        if state is not self._state:
            self._transition(state, manual=True)

    def force_open(self) -> None:
        """Refuse every call until an operator resets the breaker (resilience4j `transitionToForcedOpenState`)."""
        self.transition_to(BreakerState.FORCED_OPEN)

    def disable(self) -> None:
        """Permit every call and record nothing until an operator resets it (resilience4j
        `transitionToDisabledState`)."""
        self.transition_to(BreakerState.DISABLED)

    def reset(self) -> None:
        """CLOSED with an empty window, from any state (resilience4j `reset`); always a journaled transition."""
        self._poll()
        self._transition(BreakerState.CLOSED, manual=True)

    async def aclose(self) -> None:
        """Cancel the OPEN -> HALF_OPEN timer. The breaker keeps its state."""
        await self._cancel_timer()

    # -- internals ---------------------------------------------------------------------------------

    def _now(self) -> float | None:
        try:
            return self._clock.monotonic()
        except RuntimeError:  # a virtual clock read outside its event loop (e.g. after a run)
            return None

    def _take(self, permit: Permit) -> bool:
        if permit._settled:
            raise RuntimeError("this permit was already settled")
        permit._settled = True
        return permit._generation == self._generation

    def _settle(self, permit: Permit, *, failure: bool) -> None:
        if not self._take(permit) or self._state is BreakerState.DISABLED:
            return  # issued before the last transition (its window is gone), or nothing is recorded
        now = self._now()
        slow = (permit._started is not None and now is not None
                and now - permit._started > self.config.slow_call_duration_threshold_s)
        self._window.append((failure, slow))
        if self._state is BreakerState.CLOSED:
            if len(self._window) >= min(self.config.minimum_calls, self.config.window_size) and self._exceeded():
                self._transition(BreakerState.OPEN)
        elif len(self._window) >= self.config.permitted_half_open_calls:  # HALF_OPEN: every trial call is in
            self._transition(BreakerState.OPEN if self._exceeded() else BreakerState.CLOSED)

    def _exceeded(self) -> bool:
        failure_rate, slow_rate = self._rate(0), self._rate(1)
        return ((failure_rate is not None and failure_rate >= self.config.failure_rate_threshold)
                or (slow_rate is not None and slow_rate >= self.config.slow_call_rate_threshold))

    def _poll(self) -> None:
        """Apply a due OPEN -> HALF_OPEN transition now. The timer task normally does it at the exact
        time, but a caller woken at that same instant (or a late timer on a loaded real clock) must not
        observe OPEN after the wait is over."""
        if self._state is not BreakerState.OPEN or self._opened_at is None:
            return
        now = self._now()
        if now is not None and now >= self._opened_at + self.config.wait_in_open_s:
            self._transition(BreakerState.HALF_OPEN)

    def _rate(self, index: int) -> float | None:
        return sum(outcome[index] for outcome in self._window) / len(self._window) if self._window else None

    def _transition(self, to_state: BreakerState, *, manual: bool = False) -> None:
        from_state = self._state
        event = BreakerTransitioned(name=self.name, from_state=from_state, to_state=to_state,
                                    failure_rate=self._rate(0), calls=len(self._window),
                                    slow_call_rate=self._rate(1), manual=manual)
        self._state = to_state
        self._generation += 1
        size = self.config.permitted_half_open_calls if to_state is BreakerState.HALF_OPEN else self.config.window_size
        self._window = deque(maxlen=size)
        self._half_open_issued = 0
        if self._timer is not None and self._timer is not _current_task():
            self._timer.cancel()
        self._timer = None
        if to_state is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
            self._timer = asyncio.get_running_loop().create_task(
                self._half_open_after(self._generation, self._opened_at + self.config.wait_in_open_s),
                name=f"breaker-{self.name}-half-open")
        else:
            self._opened_at = None
        logger.info("breaker %s: %s -> %s%s (failure rate %s, slow-call rate %s over %d calls)", self.name,
                    from_state.value, to_state.value, " (manual)" if manual else "", event.failure_rate,
                    event.slow_call_rate, event.calls)
        self._listener(event)
        for observer in self._observers:
            observer(event)

    async def _half_open_after(self, generation: int, due: float) -> None:
        await self._clock.sleep(due - self._clock.monotonic())
        if self._generation == generation:
            self._poll()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is None or timer.done():
            return
        timer.cancel()
        try:
            await timer
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop
        return None
