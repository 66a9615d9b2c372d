"""The provider monitor: success rate and latency over a time window, the breaker's state, and active
health checks, folded into HEALTHY / DEGRADED / UNHEALTHY by runbook `000_030ea53f0735abf7.txt §7`.

Bands (§7 "Key Metrics to Monitor": Healthy / Warning / Critical). The runbook writes the healthy
and critical bands with strict signs and the warning band as a closed range, so each boundary value
falls in the *warning* band:

| metric                     | HEALTHY    | DEGRADED (warning)   | UNHEALTHY (critical) |
|----------------------------|------------|----------------------|----------------------|
| success rate               | > 99 %     | 95 % - 99 % (both in) | < 95 %               |
| latency (mean, or p95)     | < 500 ms   | 500 - 2000 ms (both in) | > 2000 ms          |
| circuit state              | CLOSED     | HALF_OPEN            | OPEN, FORCED_OPEN    |

The status is the worst of the three. Exactly 99 % and exactly 95 % are DEGRADED; exactly 500 ms and
exactly 2000 ms are DEGRADED. A DISABLED breaker counts as CLOSED. The latency band uses the mean
("Avg Latency" in §7) unless `MonitorConfig.latency_statistic` is "p95" (nearest rank).

Samples: every call a caller `record`s and every active health check, over the last `window_s`
seconds of the injected clock (a sample exactly `window_s` old has left the window). A call that
failed by `is_failure` (5xx, timeout, dropped connection, malformed body: the breaker's predicate)
is a failure; a 4xx is a success (the provider answered). Latency counts every sample, failures
included (a timeout is what the user waited). A call the breaker refused (`CircuitOpen`) is no
sample: nothing reached the provider, and the circuit band already says OPEN. With fewer than
`minimum_samples` in the window the rate and latency bands do not judge anew (too little evidence): while
the newest sample in the window is a failure their last verdict stands; a newest sample that succeeded (a
provider that answers again, usually the next health check) clears it, and so does an empty window, where
a quiet provider's status comes from its breaker alone. Without this hold, a provider judged UNHEALTHY whose
callers then read from the cached context (000 §2's fallback sends them nowhere else) ran out of samples
within a window and flipped back to HEALTHY on no evidence at all, sending the next calls to a provider
still down: the status flapped every minute of an outage (found by scenarios/epic-outage-fallback.yaml).
The window is re-evaluated on every record, health check, breaker transition and status read; a change
emits `ProviderHealthChanged`.

Active health checks (§2 "Force Health Check": `check_health()`): `start()` runs one now and then
one every `check_interval_s` on the injected clock, as a task `stop()` cancels. A check runs the
injected probe (`search_probe(connector)`: a one-entry search) within `check_timeout_s`.

`status()` is runbook `004_bc3882054056792c.txt` "Health Monitoring"'s status object: connected,
healthy, response time, uptime % (share of health checks that found the provider up since the
monitor started; a check the breaker refused counts as down) and error count (provider failures
since start), plus the success rate, latencies and breaker state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Literal

from integrations.clock import Clock
from integrations.events import (
    BreakerState,
    BreakerTransitioned,
    EventListener,
    HealthStatus,
    ProviderHealthChanged,
    ignore_event,
)
from integrations.fhir.breaker import CircuitBreaker, provider_failure
from integrations.fhir.connector import FhirConnector
from integrations.fhir.errors import CircuitOpen, ConnectionFailed, RequestTimeout

logger = logging.getLogger(__name__)

HealthProbe = Callable[[], Awaitable[object]]
HealthObserver = Callable[[ProviderHealthChanged], None]
_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Window, bands (runbook 000 §7) and health-check timing."""

    window_s: float = 60.0
    minimum_samples: int = 5
    healthy_success_rate: float = 0.99  # 000 §7: HEALTHY above this
    critical_success_rate: float = 0.95  # 000 §7: UNHEALTHY below this
    healthy_latency_s: float = 0.5  # 000 §7: HEALTHY below 500 ms
    critical_latency_s: float = 2.0  # 000 §7: UNHEALTHY above 2000 ms
    latency_statistic: Literal["mean", "p95"] = "mean"
    check_interval_s: float = 30.0
    check_timeout_s: float = 10.0
    max_samples: int = 10_000
    is_failure: Callable[[BaseException], bool] = field(default=provider_failure)

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.check_interval_s <= 0 or self.check_timeout_s <= 0:
            raise ValueError("window_s, check_interval_s and check_timeout_s must be positive")
        if self.minimum_samples < 1 or self.max_samples < self.minimum_samples:
            raise ValueError("minimum_samples must be at least 1 and at most max_samples")
        if not 0.0 <= self.critical_success_rate <= self.healthy_success_rate <= 1.0:
            raise ValueError("success-rate bands must satisfy 0 <= critical <= healthy <= 1")
        if not 0.0 < self.healthy_latency_s <= self.critical_latency_s:
            raise ValueError("latency bands must satisfy 0 < healthy <= critical")


def success_band(rate: float, config: MonitorConfig) -> HealthStatus:
    """> 99 % HEALTHY, 95 %-99 % (inclusive) DEGRADED, < 95 % UNHEALTHY (runbook 000 §7)."""
    if rate > config.healthy_success_rate:
        return HealthStatus.HEALTHY
    if rate >= config.critical_success_rate:
        return HealthStatus.DEGRADED
    return HealthStatus.UNHEALTHY


def latency_band(latency_s: float, config: MonitorConfig) -> HealthStatus:
    """< 500 ms HEALTHY, 500-2000 ms (inclusive) DEGRADED, > 2000 ms UNHEALTHY (runbook 000 §7)."""
    if latency_s < config.healthy_latency_s:
        return HealthStatus.HEALTHY
    if latency_s <= config.critical_latency_s:
        return HealthStatus.DEGRADED
    return HealthStatus.UNHEALTHY


def breaker_band(state: BreakerState) -> HealthStatus:
    """CLOSED HEALTHY, HALF_OPEN DEGRADED, OPEN UNHEALTHY (runbook 000 §7 "Circuit State")."""
    if state in (BreakerState.OPEN, BreakerState.FORCED_OPEN):
        return HealthStatus.UNHEALTHY
    if state is BreakerState.HALF_OPEN:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def worst(*statuses: HealthStatus) -> HealthStatus:
    return max(statuses, key=_RANK.__getitem__, default=HealthStatus.HEALTHY)


def nearest_rank(values: list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]


def search_probe(connector: FhirConnector, resource_type: str = "Patient") -> HealthProbe:
    """A health check that asks the provider for one `resource_type` (through its breaker and retries)."""

    async def probe() -> object:
        return await connector.search(resource_type, {"_count": "1"})

    return probe


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """One active health check. `latency_s` is None when the breaker refused it (nothing was sent)."""

    ok: bool
    latency_s: float | None
    error: str | None  # error class name
    health: HealthStatus  # the monitor's status after the check


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """Runbook 004 "Health Monitoring"'s status object, and 000 §2's `get_status()`."""

    vendor: str
    health: HealthStatus
    connected: bool  # the last call or check got an answer (any status) from the provider
    healthy: bool  # health is HEALTHY
    response_time_ms: float | None  # mean latency over the window
    p95_latency_ms: float | None
    success_rate: float | None  # over the window
    samples: int  # in the window
    uptime_percentage: float | None  # share of health checks that found the provider up; None before any
    error_count: int  # provider failures since the monitor started
    breaker_state: BreakerState | None
    last_check_at: datetime | None
    fallback_active: bool = False  # filled in by `ResilientFhirClient.status()` (runbook 000 §8)


@dataclass(frozen=True, slots=True)
class _Sample:
    t: float
    failed: bool
    latency_s: float


@dataclass(frozen=True, slots=True)
class _Window:
    samples: int
    success_rate: float | None
    mean_s: float | None
    p95_s: float | None


class ProviderMonitor:
    """One provider's health; see the module docstring."""

    def __init__(self, vendor: str, clock: Clock, *, breaker: CircuitBreaker | None = None,
                 probe: HealthProbe | None = None, config: MonitorConfig | None = None,
                 listener: EventListener = ignore_event) -> None:
        self.vendor = vendor
        self.config = config if config is not None else MonitorConfig()
        self.breaker = breaker
        self._clock = clock
        self._probe = probe
        self._listener = listener
        self._observers: list[HealthObserver] = []
        self._samples: deque[_Sample] = deque(maxlen=self.config.max_samples)
        self._health = HealthStatus.HEALTHY
        self._evidence = HealthStatus.HEALTHY  # the rate and latency bands' last verdict on enough samples
        self._connected = False
        self._errors = 0
        self._checks = 0
        self._checks_up = 0
        self._last_check_at: datetime | None = None
        self._last_now = 0.0
        self._task: asyncio.Task[None] | None = None
        if breaker is not None:
            breaker.subscribe(self._on_transition)

    def __repr__(self) -> str:
        return f"ProviderMonitor(vendor={self.vendor!r}, health={self._health.value})"

    @property
    def health(self) -> HealthStatus:
        return self._evaluate()

    def subscribe(self, observer: HealthObserver) -> None:
        """Call `observer` after the listener whenever the status changes."""
        self._observers.append(observer)

    def record(self, latency_s: float, error: BaseException | None) -> None:
        """One call's outcome: None is a success; see the module docstring for what a failure is."""
        if isinstance(error, CircuitOpen):
            return
        failed = error is not None and self.config.is_failure(error)
        self._add(latency_s, failed=failed, connected=not isinstance(error, ConnectionFailed | RequestTimeout))
        self._evaluate()

    async def check_health(self) -> HealthCheckResult:
        """Run the probe once now (runbook 000 §2 "Force Health Check")."""
        if self._probe is None:
            raise RuntimeError(f"the {self.vendor} monitor has no health probe")
        started = self._clock.monotonic()
        error: BaseException | None = None
        try:
            async with self._clock.timeout(self.config.check_timeout_s):
                await self._probe()
        except CircuitOpen:
            self._checks += 1
            self._last_check_at = self._clock.now()
            return HealthCheckResult(ok=False, latency_s=None, error="CircuitOpen", health=self._evaluate())
        except TimeoutError:
            error = RequestTimeout("health check timed out", vendor=self.vendor)
        except Exception as exc:  # the probe's own error: a provider failure counts, a 4xx answer does not
            error = exc
            logger.info("%s health check raised %s", self.vendor, type(exc).__name__)
        latency = self._clock.monotonic() - started
        failed = error is not None and self.config.is_failure(error)
        self._checks += 1
        self._checks_up += not failed
        self._last_check_at = self._clock.now()
        self._add(latency, failed=failed, connected=not isinstance(error, ConnectionFailed | RequestTimeout))
        return HealthCheckResult(ok=not failed, latency_s=latency,
                                 error=None if error is None else type(error).__name__, health=self._evaluate())

    def start(self) -> None:
        """Start the periodic health checks (inside the running loop); `stop()` ends them."""
        if self._probe is None:
            raise RuntimeError(f"the {self.vendor} monitor has no health probe")
        if self._task is not None and not self._task.done():
            raise RuntimeError(f"the {self.vendor} monitor is already running")
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"monitor-{self.vendor}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    @property
    def has_probe(self) -> bool:
        return self._probe is not None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> ProviderStatus:
        health = self._evaluate()
        window = self._window()
        return ProviderStatus(
            vendor=self.vendor, health=health, connected=self._connected, healthy=health is HealthStatus.HEALTHY,
            response_time_ms=_ms(window.mean_s), p95_latency_ms=_ms(window.p95_s), success_rate=window.success_rate,
            samples=window.samples,
            uptime_percentage=round(100.0 * self._checks_up / self._checks, 3) if self._checks else None,
            error_count=self._errors, breaker_state=self.breaker.state if self.breaker is not None else None,
            last_check_at=self._last_check_at,
        )

    # -- internals ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self.check_health()
            await self._clock.sleep(self.config.check_interval_s)

    def _on_transition(self, _event: BreakerTransitioned) -> None:
        self._evaluate()

    def _now(self) -> float:
        # A virtual clock read outside its loop (a report after the run) fails: time stands still then.
        with contextlib.suppress(RuntimeError):
            self._last_now = self._clock.monotonic()
        return self._last_now

    def _add(self, latency_s: float, *, failed: bool, connected: bool) -> None:
        self._samples.append(_Sample(t=self._now(), failed=failed, latency_s=max(0.0, latency_s)))
        self._errors += failed
        self._connected = connected

    def _window(self) -> _Window:
        horizon = self._now() - self.config.window_s
        while self._samples and self._samples[0].t <= horizon:
            self._samples.popleft()
        n = len(self._samples)
        if n == 0:
            return _Window(samples=0, success_rate=None, mean_s=None, p95_s=None)
        latencies = [s.latency_s for s in self._samples]
        return _Window(samples=n, success_rate=sum(not s.failed for s in self._samples) / n, mean_s=fmean(latencies),
                       p95_s=nearest_rank(latencies, 95))

    def _evaluate(self) -> HealthStatus:
        window = self._window()
        if window.samples >= self.config.minimum_samples and window.success_rate is not None:
            latency = window.mean_s if self.config.latency_statistic == "mean" else window.p95_s
            judged = [success_band(window.success_rate, self.config)]
            if latency is not None:
                judged.append(latency_band(latency, self.config))
            self._evidence = worst(*judged)
        elif not self._samples or not self._samples[-1].failed:
            # A quiet window says nothing (the breaker alone judges); a few samples whose newest is a success
            # say the provider answers again. A few samples whose newest failed change nothing.
            self._evidence = HealthStatus.HEALTHY
        bands = [self._evidence]
        breaker_state = self.breaker.state if self.breaker is not None else None
        if breaker_state is not None:
            bands.append(breaker_band(breaker_state))
        health = worst(*bands)
        if health is not self._health:
            event = ProviderHealthChanged(
                vendor=self.vendor, from_status=self._health, to_status=health, success_rate=window.success_rate,
                avg_latency_s=window.mean_s, p95_latency_s=window.p95_s, samples=window.samples,
                breaker_state=breaker_state)
            self._health = health
            logger.info("provider %s: %s -> %s", self.vendor, event.from_status.value, health.value)
            self._listener(event)
            for observer in self._observers:
                observer(event)
        return self._health


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
