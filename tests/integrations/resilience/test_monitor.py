"""The provider monitor: runbook 000_030ea53f0735abf7.txt §7's bands at their boundaries (each boundary
value is in the warning band, DEGRADED), the time window, the breaker's band, active health checks on
the virtual clock, and runbook 004's status object."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from integrations.events import BreakerState, HealthStatus, IntegrationEvent, ProviderHealthChanged
from integrations.fhir import BreakerConfig, CircuitBreaker, ConnectionFailed, NotFound, ServerError
from integrations.resilience import (
    MonitorConfig,
    ProviderMonitor,
    latency_band,
    success_band,
)

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY
CONFIG = MonitorConfig()


@pytest.mark.parametrize(("ok", "total", "band"), [
    (1000, 1000, HEALTHY), (995, 1000, HEALTHY),
    (99, 100, DEGRADED),  # exactly 99 %: "95-99%" is Warning, ">99%" is Healthy
    (97, 100, DEGRADED),
    (95, 100, DEGRADED),  # exactly 95 %: still Warning; Critical is "<95%"
    (949, 1000, UNHEALTHY), (0, 10, UNHEALTHY),
])
def test_success_rate_bands(ok: int, total: int, band: HealthStatus) -> None:
    assert success_band(ok / total, CONFIG) is band


@pytest.mark.parametrize(("latency_s", "band"), [
    (0.0, HEALTHY), (0.4999, HEALTHY),
    (0.5, DEGRADED),  # exactly 500 ms: "500-2000ms" is Warning, "<500ms" is Healthy
    (2.0, DEGRADED),  # exactly 2000 ms: still Warning; Critical is ">2000ms"
    (2.0001, UNHEALTHY), (30.0, UNHEALTHY),
])
def test_latency_bands(latency_s: float, band: HealthStatus) -> None:
    assert latency_band(latency_s, CONFIG) is band


@pytest.mark.parametrize(("failures", "latency_s", "health"), [
    (0, 0.499, HEALTHY), (1, 0.1, DEGRADED), (5, 0.1, DEGRADED), (6, 0.1, UNHEALTHY),
    (0, 0.5, DEGRADED), (0, 2.0, DEGRADED), (0, 2.001, UNHEALTHY), (6, 0.5, UNHEALTHY),
])
def test_monitor_status_is_the_worst_band_over_100_calls(failures: int, latency_s: float,
                                                          health: HealthStatus) -> None:
    async def main() -> tuple[HealthStatus, float | None, float | None]:
        monitor = ProviderMonitor("epic", VirtualClock())
        for i in range(100):
            monitor.record(latency_s, ServerError("x", vendor="epic", status=503) if i < failures else None)
        status = monitor.status()
        return monitor.health, status.success_rate, status.response_time_ms

    observed, rate, mean_ms = run_virtual(main)
    assert observed is health
    assert rate == pytest.approx((100 - failures) / 100)
    assert mean_ms == pytest.approx(latency_s * 1000)


def test_p95_latency_can_drive_the_band() -> None:
    async def main() -> tuple[HealthStatus, HealthStatus, float | None]:
        clock = VirtualClock()
        mean = ProviderMonitor("epic", clock)
        p95 = ProviderMonitor("epic", clock, config=MonitorConfig(latency_statistic="p95"))
        for monitor in (mean, p95):
            for i in range(20):  # mean 0.3 s, nearest-rank p95 2.5 s
                monitor.record(2.5 if i < 2 else 0.0555555555555556, None)
        return mean.health, p95.health, p95.status().p95_latency_ms

    assert run_virtual(main) == (HEALTHY, UNHEALTHY, 2500.0)


def test_too_few_samples_do_not_judge() -> None:
    async def main() -> tuple[HealthStatus, HealthStatus]:
        monitor = ProviderMonitor("epic", VirtualClock())
        for _ in range(4):
            monitor.record(5.0, ConnectionFailed("reset", vendor="epic"))
        four = monitor.health  # 4 failed samples < minimum_samples (5): no verdict from the rates
        monitor.record(5.0, ConnectionFailed("reset", vendor="epic"))
        return four, monitor.health

    assert run_virtual(main) == (HEALTHY, UNHEALTHY)


def test_health_change_events_carry_rates_and_the_time_they_happened() -> None:
    async def main() -> list[tuple[float, HealthStatus, HealthStatus, int, float | None]]:
        clock = VirtualClock()
        seen: list[tuple[float, HealthStatus, HealthStatus, int, float | None]] = []

        def listen(event: IntegrationEvent) -> None:
            assert isinstance(event, ProviderHealthChanged)
            seen.append((clock.monotonic(), event.from_status, event.to_status, event.samples, event.success_rate))

        monitor = ProviderMonitor("epic", clock, listener=listen)
        for _ in range(5):
            monitor.record(0.01, ConnectionFailed("reset", vendor="epic"))  # t=0: 5 samples, all failed
        await clock.sleep(59.999)
        monitor.status()  # still in the window
        await clock.sleep(0.001)
        monitor.status()  # t=60: they have left it
        return seen

    assert run_virtual(main) == [(0.0, HEALTHY, UNHEALTHY, 5, 0.0), (60.0, UNHEALTHY, HEALTHY, 0, None)]


def test_breaker_state_is_a_band_and_its_transitions_are_evaluated_at_once() -> None:
    async def main() -> list[tuple[float, HealthStatus, BreakerState | None]]:
        clock = VirtualClock()
        seen: list[tuple[float, HealthStatus, BreakerState | None]] = []
        breaker = CircuitBreaker("epic", clock, BreakerConfig(window_size=1, minimum_calls=1,
                                                              permitted_half_open_calls=1))
        monitor = ProviderMonitor("epic", clock, breaker=breaker)
        monitor.subscribe(lambda e: seen.append((clock.monotonic(), e.to_status, e.breaker_state)))
        breaker.record_failure(breaker.acquire())  # OPEN at t=0
        await clock.sleep(60)  # HALF_OPEN at t=60 (the timer), heard without anyone asking
        breaker.record_success(breaker.acquire())  # CLOSED
        breaker.force_open()
        breaker.disable()
        await breaker.aclose()
        return seen

    assert run_virtual(main) == [
        (0.0, UNHEALTHY, BreakerState.OPEN), (60.0, DEGRADED, BreakerState.HALF_OPEN),
        (60.0, HEALTHY, BreakerState.CLOSED), (60.0, UNHEALTHY, BreakerState.FORCED_OPEN),
        (60.0, HEALTHY, BreakerState.DISABLED),
    ]


class ScriptedProbe:
    """Answers health checks from a script of (latency, exception or None), then succeeds fast."""

    def __init__(self, clock: VirtualClock, script: list[tuple[float, BaseException | None]]) -> None:
        self.clock = clock
        self.script = deque(script)
        self.calls: list[float] = []

    async def __call__(self) -> object:
        self.calls.append(self.clock.monotonic())
        latency, error = self.script.popleft() if self.script else (0.05, None)
        await self.clock.sleep(latency)
        if error is not None:
            raise error
        return None


def test_active_health_checks_run_on_the_interval_until_stopped_and_fill_the_status() -> None:
    async def main() -> tuple[list[float], list[tuple[bool, str | None]], object, bool]:
        clock = VirtualClock()
        probe = ScriptedProbe(clock, [(0.2, None), (0.1, ServerError("x", vendor="epic", status=503)),
                                      (0.1, NotFound("x", vendor="epic", status=404)), (25.0, None)])
        monitor = ProviderMonitor("epic", clock, probe=probe, config=MonitorConfig(check_interval_s=30.0,
                                                                                    check_timeout_s=10.0))
        results = []
        monitor.start()
        with pytest.raises(RuntimeError, match="already running"):
            monitor.start()
        await clock.sleep(110)  # checks start at 0, 30.2, 60.3, 90.4 (the interval runs after each check)
        running = monitor.running
        await monitor.stop()
        await clock.sleep(100)  # stopped: no more checks
        results.append((monitor.status().connected, None))
        forced = await monitor.check_health()  # runbook 000 §2 "Force Health Check"
        results.append((forced.ok, forced.error))
        return probe.calls, results, monitor.status(), running

    calls, results, status, running = run_virtual(main)
    assert running
    assert [round(t, 3) for t in calls] == [0.0, 30.2, 60.3, 90.4, 210.0]
    assert results == [(False, None), (True, None)]  # the 4th check timed out at 100.4 s: not connected
    assert status.uptime_percentage == 60.0  # 3 of 5 checks found it up: the 503 and the timeout did not
    assert status.error_count == 2
    assert status.samples == 1  # only the forced check is within the last 60 s
    assert status.last_check_at == VIRTUAL_EPOCH + timedelta(seconds=210.05)
    assert status.connected
    assert status.health is HEALTHY
    assert status.healthy


def test_a_check_the_breaker_refuses_is_no_sample_but_counts_as_down() -> None:
    async def main() -> tuple[bool, str | None, float | None, object]:
        clock = VirtualClock()
        breaker = CircuitBreaker("epic", clock)
        breaker.force_open()

        async def probe() -> object:
            return breaker.acquire()

        monitor = ProviderMonitor("epic", clock, breaker=breaker, probe=probe)
        result = await monitor.check_health()
        await breaker.aclose()
        return result.ok, result.error, result.latency_s, monitor.status()

    ok, error, latency, status = run_virtual(main)
    assert (ok, error, latency) == (False, "CircuitOpen", None)
    assert status.samples == 0
    assert status.uptime_percentage == 0.0
    assert status.error_count == 0
    assert status.health is UNHEALTHY
    assert status.breaker_state is BreakerState.FORCED_OPEN


def test_monitor_without_probe_cannot_check() -> None:
    async def main() -> None:
        monitor = ProviderMonitor("epic", VirtualClock())
        with pytest.raises(RuntimeError, match="no health probe"):
            monitor.start()
        with pytest.raises(RuntimeError, match="no health probe"):
            await monitor.check_health()

    run_virtual(main)


@pytest.mark.parametrize("bad", [
    {"window_s": 0}, {"minimum_samples": 0}, {"healthy_success_rate": 0.9, "critical_success_rate": 0.95},
    {"healthy_latency_s": 3.0}, {"check_interval_s": -1},
])
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        MonitorConfig(**bad)


def test_a_verdict_holds_while_the_few_samples_left_keep_failing() -> None:
    """Regression (scenarios/epic-outage-fallback.yaml): while callers read from the cached context, an
    UNHEALTHY provider gets only a health check now and then; one failed check in an otherwise emptied window
    must not turn it HEALTHY. A success among the few does, and an empty window leaves the breaker to judge."""

    async def main() -> list[HealthStatus]:
        clock = VirtualClock()
        monitor = ProviderMonitor("epic", clock)
        seen = []
        for _ in range(5):
            monitor.record(0.01, ConnectionFailed("reset", vendor="epic"))
        seen.append(monitor.health)  # 5 failures: UNHEALTHY
        await clock.sleep(61)
        monitor.record(0.01, ConnectionFailed("reset", vendor="epic"))  # the old five left; one new failure
        seen.append(monitor.health)
        await clock.sleep(30)
        monitor.record(0.01, ConnectionFailed("reset", vendor="epic"))  # two failures in the window
        seen.append(monitor.health)
        await clock.sleep(1)
        monitor.record(0.01, None)  # the provider answers again
        seen.append(monitor.health)
        return seen

    assert run_virtual(main) == [UNHEALTHY, UNHEALTHY, UNHEALTHY, HEALTHY]
