"""The client-side rate limiter: the integration throttles itself before the vendor does (runbook
004_bc3882054056792c.txt "Rate Limiting": Epic 600/h, Cerner 10,000/h), waiting on the injected clock,
refusing with `ClientThrottled` only past an optional `max_wait_s`."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets
from integrations.events import BreakerState, RequestCompleted, RequestThrottled, RetryScheduled
from integrations.fhir import CircuitOpen, RateLimited, RetryPolicy
from integrations.fhir.errors import ClientThrottled
from integrations.fhir.ratelimit import VENDOR_RATE_LIMITS, RateLimit, RateLimiter
from tests.integrations.fakes import FakeVendor, make_kit
from tests.integrations.pipeline.lab import vendor_lab


class ManualClock:
    """Only `monotonic` matters to the limiter; the test moves it."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return VIRTUAL_EPOCH

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("the limiter itself never sleeps")

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        raise AssertionError("the limiter itself never times out")


@settings(max_examples=60, deadline=None)
@given(requests=st.integers(1, 6), window=st.sampled_from([1.0, 10.0, 60.0]),
       gaps=st.lists(st.sampled_from([0.0, 0.0, 0.25, 1.0, 7.5, 60.0]), min_size=1, max_size=40),
       releases=st.sets(st.integers(0, 39), max_size=5))
def test_no_window_ever_holds_more_slots_than_the_limit(requests: int, window: float, gaps: list[float],
                                                        releases: set[int]) -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimit(requests, window), clock)
    used: list[float] = []
    for i, gap in enumerate(gaps):
        clock.t += gap
        slot = limiter.reserve()
        assert slot.at >= clock.t
        assert slot.wait_s == slot.at - clock.t
        if i in releases:
            limiter.release(slot)
        else:
            used.append(slot.at)
    assert used == sorted(used)  # first come, first served
    for end in used:
        assert sum(end - window < t <= end for t in used) <= requests


def test_a_full_burst_does_not_buy_a_second_one_within_the_hour() -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimit(600, 3600.0), clock)
    slots = [limiter.reserve().at for _ in range(1201)]
    assert slots[:600] == [0.0] * 600
    assert slots[600:1200] == [3600.0] * 600  # a token bucket would have let these trickle in during the hour
    assert slots[1200] == 7200.0
    clock.t = 3599.0
    assert limiter.delay() == 7200.0 - 3599.0
    assert limiter.in_window() == 1201


def test_rate_limit_rejects_nonsense() -> None:
    for bad in ({"requests": 0, "window_s": 1.0}, {"requests": 1, "window_s": 0.0},
                {"requests": 1, "window_s": 1.0, "max_wait_s": -1.0}):
        with pytest.raises(ValueError, match="must"):
            RateLimit(**bad)  # type: ignore[arg-type]


def test_the_connector_waits_for_its_slot_and_journals_the_wait() -> None:
    async def main() -> tuple[list[float], list[object]]:
        vendor = FakeVendor(VirtualClock())
        kit = make_kit(vendor)
        kit.connector.rate_limiter = RateLimiter(RateLimit(3, 60.0), kit.clock)
        for _ in range(4):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return [r.t for r in vendor.requests], kit.of(RequestThrottled)

    times, throttled = run_virtual(main)
    assert times == [0.0, 0.0, 0.0, 60.0]
    assert [(e.wait_s, e.limit, e.window_s, e.refused) for e in throttled if isinstance(e, RequestThrottled)] == [
        (60.0, 3, 60.0, False)]


def test_past_max_wait_the_call_is_refused_with_a_typed_error_and_nothing_is_sent() -> None:
    async def main() -> tuple[ClientThrottled, int, list[RequestThrottled | RetryScheduled], int, float]:
        vendor = FakeVendor(VirtualClock())
        kit = make_kit(vendor)
        kit.connector.rate_limiter = limiter = RateLimiter(RateLimit(1, 60.0, max_wait_s=5.0), kit.clock)
        await kit.connector.read("Patient", "p1")
        await kit.clock.sleep(10)
        with pytest.raises(ClientThrottled) as caught:
            await kit.connector.read("Patient", "p1")
        waited = kit.clock.monotonic()
        await kit.close()
        events = [e for _, e in kit.events if isinstance(e, RequestThrottled | RetryScheduled)]
        return caught.value, len(vendor.requests), events, limiter.in_window(), waited

    error, sent, events, in_window, waited = run_virtual(main)
    assert isinstance(error, RateLimited)
    assert (error.is_rate_limit, error.retryable, error.status, error.retry_after_s) == (True, False, None, 50.0)
    assert "1/60s" in str(error)
    assert sent == 1
    assert waited == 10.0  # refused at once, not after waiting
    assert [(type(e).__name__, getattr(e, "refused", None)) for e in events] == [("RequestThrottled", True)]
    assert in_window == 1  # the refusal reserved nothing


def test_an_open_breaker_fails_fast_without_taking_a_slot() -> None:
    async def main() -> int:
        kit = make_kit()
        kit.connector.rate_limiter = limiter = RateLimiter(RateLimit(1, 60.0), kit.clock)
        kit.breaker.transition_to(BreakerState.OPEN)
        with pytest.raises(CircuitOpen):
            await kit.connector.read("Patient", "p1")
        in_window = limiter.in_window()
        await kit.close()
        return in_window

    assert run_virtual(main) == 0


def test_a_cancelled_wait_gives_its_slot_and_its_breaker_permit_back() -> None:
    async def main() -> tuple[list[float], int]:
        vendor = FakeVendor(VirtualClock())
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=1))
        kit.connector.rate_limiter = RateLimiter(RateLimit(1, 60.0), kit.clock)
        await kit.connector.read("Patient", "p1")
        waiting = asyncio.create_task(kit.connector.read("Patient", "p1"))  # its slot is at t=60
        await kit.clock.sleep(1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await kit.connector.read("Patient", "p1")  # takes the slot at t=60 the cancelled call gave back
        await kit.close()
        return [r.t for r in vendor.requests], len(kit.of(RequestCompleted))

    times, completed = run_virtual(main)
    assert times == [0.0, 60.0]
    assert completed == 2


def test_the_lab_wires_the_runbook_limits_per_vendor() -> None:
    async def main() -> dict[str, RateLimit | None]:
        sources = RandomSource(3)
        limits: dict[str, RateLimit | None] = {}
        for name, adapter in sorted(VENDORS.items()):
            unused = httpx.MockTransport(lambda request: httpx.Response(599))
            client = adapter.client(base_url="http://x.test", transport=unused, clock=VirtualClock(),
                                    sources=sources, secrets=LabSecrets.generate(name, sources.stream(name)),
                                    listener=lambda e: None)
            limiter = client.connector.rate_limiter
            limits[name] = limiter.limit if limiter is not None else None
            await client.connector.aclose()
            await client.breaker.aclose()
        return limits

    assert run_virtual(main) == {"allscripts": None, "cerner": RateLimit(10_000, 3600.0),
                                 "epic": RateLimit(600, 3600.0), "medplum": None}
    assert dict(VENDOR_RATE_LIMITS) == {"epic": RateLimit(600, 3600.0), "cerner": RateLimit(10_000, 3600.0)}


@pytest.mark.parametrize("client_limit", [True, False])
def test_epics_601st_request_in_an_hour_waits_instead_of_meeting_epics_429(client_limit: bool) -> None:
    async def main() -> tuple[list[int], float, list[object], str | None]:
        async with vendor_lab("epic", patients=1) as lab:
            connector = lab.client.connector
            if not client_limit:
                connector.rate_limiter = None  # the control: what the vendor does without it
            [pid] = lab.patients
            for _ in range(600):
                await connector.read("Patient", pid)
            start = lab.clock.monotonic()
            error: str | None = None
            try:
                await connector.read("Patient", pid)
            except RateLimited as exc:
                error = type(exc).__name__
            statuses = [status for _, path, status in lab.transport.seen if path.startswith("/api/FHIR")]
            return statuses, lab.clock.monotonic() - start, \
                [e for e in lab.events if isinstance(e, RequestThrottled)], error

    statuses, waited, throttled, error = run_virtual(main)
    if client_limit:
        assert error is None
        assert statuses == [200] * 601  # the vendor never had to say 429
        assert waited == 3600.0  # virtual time: the first request went at t=0
        assert [(e.wait_s, e.refused) for e in throttled if isinstance(e, RequestThrottled)] == [(3600.0, False)]
    else:
        assert error == "RateLimited"
        assert statuses[:600] == [200] * 600
        assert set(statuses[600:]) == {429}
