"""Retry policy (runbook 002_437ee203264dfa64.txt §2.1: 1 s -> 10 s max, ±25 % jitter) and the connector's
retry loop: what is retried, when, and that Retry-After is honoured, all in virtual time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from integrations.events import BreakerState, RequestCompleted, RetryScheduled
from integrations.fhir import (
    AuthError,
    CircuitOpen,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    ValidationFailed,
    parse_retry_after,
    retry_safe,
)
from tests.integrations.fakes import FakeVendor, fhir_json, make_kit, outcome, patient

BASES = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_base_delays_double_from_1_s_up_to_the_10_s_cap() -> None:
    policy = RetryPolicy()
    assert [policy.base_delay(n) for n in range(1, 7)] == BASES
    assert policy.base_delay(10_000) == 10.0


@settings(max_examples=200)
@given(seed=st.integers(min_value=0, max_value=2**64))
def test_every_jittered_delay_is_within_25_percent_of_its_base(seed: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(seed)
    for attempt, base in enumerate(BASES, start=1):
        delay = policy.delay(attempt, rng)
        assert 0.75 * base <= delay <= 1.25 * base


def test_jitter_varies_and_the_cap_applies_before_it() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    first = [policy.delay(1, rng) for _ in range(50)]
    capped = [policy.delay(6, rng) for _ in range(200)]
    assert len(set(first)) == 50
    assert min(first) < 0.9
    assert max(first) > 1.1
    assert max(capped) > 10.0  # the 10 s cap is on the base: jitter still spreads late retries
    assert max(capped) <= 12.5


def test_same_seed_same_delays() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, random.Random(5)) for n in (1, 2, 3)] == \
        [policy.delay(n, random.Random(5)) for n in (1, 2, 3)]


@pytest.mark.parametrize(("retry_after", "expected"), [(30.0, 30.0), (0.5, None), (3600.0, 120.0)])
def test_retry_after_is_a_lower_bound_capped_at_120_s(retry_after: float, expected: float | None) -> None:
    delay = RetryPolicy().delay(1, random.Random(3), retry_after_s=retry_after)
    if expected is None:  # shorter than the backoff: the backoff wins
        assert 0.75 <= delay <= 1.25
    else:
        assert delay == expected


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 7 ", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=45), usegmt=True), now) == 45.0
    assert parse_retry_after("Mon, 05 Jan 2026 07:59:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(("method", "conditional", "safe"), [
    ("GET", False, True), ("HEAD", False, True), ("PUT", False, True), ("DELETE", False, True),
    ("POST", False, False), ("POST", True, True), ("PATCH", False, False),
])
def test_retry_safe_methods(method: str, conditional: bool, safe: bool) -> None:
    assert retry_safe(method, conditional_create=conditional) is safe


@pytest.mark.parametrize(("error", "retried"), [
    (ServerError("x", vendor="v", status=503), True),
    (RateLimited("x", vendor="v", status=429), True),
    (RequestTimeout("x", vendor="v"), True),
    (ConnectionFailed("x", vendor="v"), True),
    (CircuitOpen("x", vendor="v"), False),
    (ValidationFailed("x", vendor="v", status=400), False),
    (AuthError("x", vendor="v", status=401), False),
    (Conflict("x", vendor="v", status=409), False),
    (PreconditionFailed("x", vendor="v", status=412), False),
])
def test_should_retry_only_transient_errors_of_safe_requests(error: ConnectorError, retried: bool) -> None:
    policy = RetryPolicy()
    assert policy.should_retry(error, 1, retry_safe=True) is retried
    assert policy.should_retry(error, 1, retry_safe=False) is False
    assert policy.should_retry(error, 3, retry_safe=True) is False  # max_attempts 3 includes the first


def test_connector_retries_with_backoff_in_virtual_time() -> None:
    async def main() -> tuple[list[float], list[object], set[str]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.extend([lambda r: outcome(503, "transient", "down"), lambda r: outcome(500, "exception", "x")])
        kit = make_kit(vendor, seed=11)
        result = await kit.connector.read("Patient", "p1")
        await kit.close()
        assert result.id == "p1"
        return [r.t for r in vendor.requests], kit.of(RetryScheduled), {r.headers["x-correlation-id"]
                                                                        for r in vendor.requests}

    times, retries, correlation_ids = run_virtual(main)
    assert len(times) == 3
    delays = [e.delay_s for e in retries if isinstance(e, RetryScheduled)]
    assert [(e.attempt, e.reason) for e in retries if isinstance(e, RetryScheduled)] == [
        (1, "ServerError"), (2, "ServerError")]
    assert 0.75 <= delays[0] <= 1.25
    assert 1.5 <= delays[1] <= 2.5
    assert times[1] == pytest.approx(delays[0])
    assert times[2] == pytest.approx(delays[0] + delays[1])
    assert len(correlation_ids) == 1  # one logical call, one id for all its attempts


def test_gives_up_after_max_attempts() -> None:
    async def main() -> tuple[int, ServerError]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(503, "transient", "down"))
        kit = make_kit(vendor)
        with pytest.raises(ServerError) as caught:
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return len(vendor.requests), caught.value

    requests, error = run_virtual(main)
    assert requests == 3
    assert error.status == 503


def test_retry_after_seconds_is_honoured() -> None:
    async def main() -> tuple[list[float], list[object]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.append(lambda r: fhir_json(429, {"resourceType": "OperationOutcome", "issue": []},
                                                 {"Retry-After": "30"}))
        kit = make_kit(vendor)
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return [r.t for r in vendor.requests], kit.of(RetryScheduled)

    times, retries = run_virtual(main)
    assert times == [0.0, 30.0]
    assert retries == [RetryScheduled(vendor="fake", attempt=1, delay_s=30.0, reason="RateLimited",
                                      retry_after_s=30.0)]


def test_retry_after_http_date_is_read_against_the_clock() -> None:
    async def main() -> list[float]:
        clock = VirtualClock()
        vendor = FakeVendor(clock)
        await clock.sleep(100)
        when = format_datetime(VIRTUAL_EPOCH + timedelta(seconds=100 + 45), usegmt=True)
        vendor.script.append(lambda r: httpx.Response(503, headers={"Retry-After": when}))
        kit = make_kit(vendor)
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return [r.t for r in vendor.requests]

    assert run_virtual(main) == [100.0, 145.0]


def test_post_without_if_none_exist_is_never_retried() -> None:
    async def main() -> tuple[int, list[object]]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(503, "transient", "down"))
        kit = make_kit(vendor)
        with pytest.raises(ServerError):
            await kit.connector.create({"resourceType": "Observation", "status": "final"})
        await kit.close()
        return len(vendor.requests), kit.of(RetryScheduled)

    assert run_virtual(main) == (1, [])


def test_post_timeout_is_not_retried_either() -> None:
    async def main() -> int:
        clock = VirtualClock()

        async def hang(request: httpx.Request) -> httpx.Response:
            await clock.sleep(60)
            return fhir_json(201, {"resourceType": "Observation", "id": "o1"})

        vendor = FakeVendor(clock)
        vendor.script.append(hang)
        kit = make_kit(vendor)
        with pytest.raises(RequestTimeout):
            await kit.connector.create({"resourceType": "Observation", "status": "final"})
        await kit.close()
        return len(vendor.requests)

    assert run_virtual(main) == 1


def test_conditional_create_is_retried() -> None:
    async def main() -> tuple[int, str | None]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.extend([lambda r: outcome(503, "transient", "down"),
                              lambda r: fhir_json(201, {"resourceType": "Observation", "id": "o1"})])
        kit = make_kit(vendor)
        created = await kit.connector.create({"resourceType": "Observation", "status": "final"},
                                             if_none_exist="identifier=urn:x|1")
        await kit.close()
        assert created.id == "o1"
        return len(vendor.requests), vendor.requests[-1].headers.get("if-none-exist")

    assert run_virtual(main) == (2, "identifier=urn:x|1")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 422])
def test_4xx_other_than_429_is_not_retried(status: int) -> None:
    async def main() -> tuple[int, list[object]]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(status, "processing", "no"))
        kit = make_kit(vendor)
        with pytest.raises(ConnectorError):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return len(kit.of(RequestCompleted)), kit.of(RetryScheduled)

    attempts, retries = run_virtual(main)
    assert retries == []
    assert attempts == 1


def test_open_breaker_is_not_retried() -> None:
    async def main() -> tuple[int, list[object]]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: fhir_json(200, patient()))
        kit = make_kit(vendor)
        kit.breaker.transition_to(BreakerState.OPEN)
        with pytest.raises(CircuitOpen):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return len(vendor.requests), kit.of(RetryScheduled)

    assert run_virtual(main) == (0, [])


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.0)
