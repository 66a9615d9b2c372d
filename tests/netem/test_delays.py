"""The emulated proxy's delaying toxics, on the virtual clock: latency (and jitter), bandwidth,
slicer, slow_close; toxics joining and leaving live requests; toxicity rolled per connection."""

from __future__ import annotations

import random

import httpx
import pytest

from harness.clock import run_virtual
from harness.netem import NetemTransport, Toxic
from harness.netem.wire import response_wire, slice_count
from tests.netem.support import later, rig, toxic


def ok(outcome: object) -> httpx.Response:
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 200
    return outcome


def test_no_toxic_passes_through_at_once() -> None:
    async def main() -> tuple[float, object]:
        async with rig() as r:
            return await r.timed()

    elapsed, outcome = run_virtual(main)
    assert elapsed == 0.0
    assert ok(outcome).json()["resourceType"] == "Patient"


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_delays_each_way_and_stacks(stream: str) -> None:
    async def main() -> list[float]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("latency", stream, latency=800))  # type: ignore[arg-type]
            one, outcome = await r.timed()
            ok(outcome)
            await r.netem.add_toxic(toxic("latency", stream, name="second", latency=500))  # type: ignore[arg-type]
            two, _ = await r.timed()
            await r.netem.remove_toxic("second")
            await r.netem.remove_toxic(f"latency_{stream}")
            none, _ = await r.timed()
            return [one, two, none]

    assert run_virtual(main) == [0.8, 1.3, 0.0]


def test_upstream_and_downstream_latency_add_up() -> None:
    async def main() -> float:
        async with rig() as r:
            await r.netem.add_toxic(toxic("latency", "upstream", latency=100))
            await r.netem.add_toxic(toxic("latency", "downstream", latency=200))
            elapsed, _ = await r.timed()
            return elapsed

    assert run_virtual(main) == 0.3


def jittered(seed: int) -> list[float]:
    async def main() -> list[float]:
        async with rig(seed) as r:
            await r.netem.add_toxic(toxic("latency", latency=1000, jitter=300))
            return [(await r.timed())[0] for _ in range(40)]

    return run_virtual(main)


def test_jitter_draws_from_the_seeded_rng_within_its_bounds() -> None:
    first, again, other = jittered(3), jittered(3), jittered(4)
    assert first == again
    assert first != other
    assert all(0.7 <= d < 1.3 for d in first)
    assert len(set(first)) > 20  # really jittered, in whole milliseconds
    assert all(round(d * 1000) == d * 1000 for d in first)


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_bandwidth_costs_wire_size_over_rate(stream: str) -> None:
    async def main() -> tuple[float, float, int]:
        async with rig() as r:
            plain = await r.client.get(f"/fhir/R4/Patient/{r.patient}", headers=r.headers)
            await r.netem.add_toxic(toxic("bandwidth", stream, rate=2))  # type: ignore[arg-type]
            elapsed, outcome = await r.timed()
            ok(outcome)
            # the same request again, with ten times the rate: ten times faster
            await r.netem.remove_toxic(f"bandwidth_{stream}")
            await r.netem.add_toxic(toxic("bandwidth", stream, rate=20))  # type: ignore[arg-type]
            faster, _ = await r.timed()
            return elapsed, faster, len(response_wire(plain, plain.content))

    elapsed, faster, response_bytes = run_virtual(main)
    assert faster == pytest.approx(elapsed / 10, abs=1e-3)
    if stream == "downstream":  # rate 2 KB/s = 2000 B/s over the response's bytes on the wire
        assert elapsed == pytest.approx(response_bytes / 2000, abs=1e-3)
    else:  # a GET's request head is a few hundred bytes
        assert 0.05 < elapsed < 0.5


def test_slicer_waits_its_delay_per_piece_and_keeps_the_data_intact() -> None:
    async def main() -> tuple[float, httpx.Response]:
        async with rig() as r:
            plain = await r.client.get(f"/fhir/R4/Patient/{r.patient}", headers=r.headers)
            await r.netem.add_toxic(toxic("slicer", average_size=1, size_variation=0, delay=1000))
            elapsed, outcome = await r.timed()
            assert ok(outcome).content == plain.content
            return elapsed, plain

    elapsed, plain = run_virtual(main)
    # one-byte pieces, 1 ms after each: one millisecond per byte of the response
    assert elapsed == pytest.approx(len(response_wire(plain, plain.content)) / 1000, abs=1e-6)


def test_slice_count_follows_toxiproxys_bounds() -> None:
    rng = random.Random(1)
    assert slice_count(24, 1, 0, rng) == 24
    counts = [slice_count(480_000, 1024, 512, rng) for _ in range(5)]
    assert all(240 <= c <= 720 for c in counts)  # toxiproxy's TestSlicerToxic bounds
    assert slice_count(100, 200, 0, rng) == 1


def test_slow_close_is_not_observable_in_one_exchange() -> None:
    async def main() -> tuple[float, object]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("slow_close", delay=5000))
            return await r.timed()

    elapsed, outcome = run_virtual(main)
    assert elapsed == 0.0
    ok(outcome)


def test_toxic_added_mid_request_joins_it_and_removal_releases_the_data() -> None:
    async def main() -> tuple[float, float]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("latency", latency=1000))
            await later(r.clock, 0.5, lambda: r.netem.add_toxic(toxic("latency", name="extra", latency=1000)))
            joined, outcome = await r.timed()  # 1 s, then the extra second it met on the way
            ok(outcome)
            await r.netem.remove_toxic("extra")
            await later(r.clock, 0.25, lambda: r.netem.remove_toxic("latency_downstream"))
            released, outcome = await r.timed()  # removed while holding the response: sent at once
            ok(outcome)
            return joined, released

    assert run_virtual(main) == (2.0, 0.25)


def affected(toxicity: float, seed: int, n: int = 200) -> list[bool]:
    async def main() -> list[bool]:
        async with rig(seed) as r:
            await r.netem.add_toxic(toxic("latency", latency=100, toxicity=toxicity))
            return [(await r.timed())[0] > 0 for _ in range(n)]

    return run_virtual(main)


def test_toxicity_is_rolled_per_connection_from_the_seeded_rng() -> None:
    half = affected(0.5, seed=9)
    assert half == affected(0.5, seed=9)
    assert half != affected(0.5, seed=10)
    assert 70 <= sum(half) <= 130
    assert not any(affected(0.0, seed=9, n=20))
    assert all(affected(1.0, seed=9, n=20))


def test_control_errors_name_the_toxic() -> None:
    from harness.clock import VirtualClock
    from harness.netem import NetworkControlError

    async def main() -> list[str]:
        netem = NetemTransport(httpx.MockTransport(lambda request: httpx.Response(200)), clock=VirtualClock(),
                               rng=random.Random(1))
        await netem.add_toxic(Toxic(name="t", type="latency"))
        errors = []
        for action in (netem.add_toxic(Toxic(name="t", type="timeout")), netem.remove_toxic("nope")):
            try:
                await action
            except NetworkControlError as exc:
                errors.append(str(exc))
        assert [t.name for t in netem.toxics] == ["t"]
        return errors

    assert run_virtual(main) == ["toxic 't' already exists", "toxic 'nope' not found"]

