import asyncio
from datetime import UTC, timedelta

import pytest

from harness.clock import VIRTUAL_EPOCH, RealClock, VirtualClock, run_virtual
from harness.rng import RandomSource


def test_virtual_clock_compresses_an_hour() -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, float]:
        start = clock.monotonic()
        await clock.sleep(3600)
        return start, clock.monotonic()

    start, end = run_virtual(main)
    assert start == 0.0
    assert end == pytest.approx(3600.0)


def test_virtual_clock_wall_time_follows_loop_time() -> None:
    clock = VirtualClock()

    async def main() -> timedelta:
        before = clock.now()
        await clock.sleep(90)
        return clock.now() - before

    assert run_virtual(main) == timedelta(seconds=90)
    assert VIRTUAL_EPOCH.tzinfo is UTC


def test_virtual_timeout_fires_in_virtual_time() -> None:
    clock = VirtualClock()

    async def main() -> float:
        with pytest.raises(TimeoutError):
            async with clock.timeout(30):
                await clock.sleep(3600)
        return clock.monotonic()

    assert run_virtual(main) == pytest.approx(30.0)


def test_concurrent_sleepers_wake_in_time_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[float, str]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((clock.monotonic(), name))

    async def main() -> None:
        await asyncio.gather(sleeper("c", 30), sleeper("a", 10), sleeper("b", 20))

    run_virtual(main)
    assert [name for _, name in woke] == ["a", "b", "c"]


@pytest.mark.real_network
def test_real_clock_scale_speeds_up_time() -> None:
    clock = RealClock(scale=100)

    async def main() -> float:
        start = clock.monotonic()
        await clock.sleep(5)  # 50 ms of real time
        return clock.monotonic() - start

    elapsed = asyncio.run(main())
    assert 4.5 <= elapsed < 20


def test_real_clock_rejects_bad_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        RealClock(scale=0)


def test_rng_streams_are_reproducible_and_independent() -> None:
    a = RandomSource(42)
    b = RandomSource(42)
    assert [a.stream("x").random() for _ in range(3)] == [b.stream("x").random() for _ in range(3)]
    assert a.stream("x").random() != a.stream("y").random()
    assert RandomSource(42).stream("x").random() != RandomSource(43).stream("x").random()
