"""The emulated proxy's failing toxics and proxy_down, on the virtual clock: each fails with the
error httpx raises against a real proxy, at the time the toxic says, and the simulator sees the
request exactly when a real server would."""

from __future__ import annotations

import httpx
import pytest

from harness.clock import run_virtual
from harness.netem.wire import response_wire
from simulators.transport import DISCONNECTED
from tests.netem.support import Rig, later, rig, toxic
from tests.simulators.support import patient


async def create(r: Rig) -> tuple[float, object, int]:
    """POST a Patient: (virtual seconds, outcome, how many Patients the simulator created)."""
    before = r.sim.store.count("Patient")
    elapsed, outcome = await r.timed("POST", "/fhir/R4/Patient", json=patient())
    return elapsed, outcome, r.sim.store.count("Patient") - before


def disconnected(outcome: object) -> None:
    assert isinstance(outcome, httpx.RemoteProtocolError), outcome
    assert str(outcome) == DISCONNECTED


def reset(outcome: object) -> None:
    assert type(outcome) is httpx.ReadError, outcome
    assert str(outcome) == ""


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_timeout_closes_after_its_timeout_without_data(stream: str) -> None:
    async def main() -> tuple[float, object]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("timeout", stream, timeout=300))  # type: ignore[arg-type]
            return await r.timed()

    elapsed, outcome = run_virtual(main)
    assert elapsed == 0.3
    disconnected(outcome)


def test_timeout_zero_holds_until_the_clients_own_timeout() -> None:
    async def main() -> tuple[float, str]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("timeout", timeout=0))
            started = r.clock.monotonic()
            with pytest.raises(TimeoutError):
                async with r.clock.timeout(10):
                    await r.client.get(f"/fhir/R4/Patient/{r.patient}", headers=r.headers)
            return r.clock.monotonic() - started, "held"

    elapsed, _ = run_virtual(main)
    assert elapsed == 10.0


def test_removing_a_timeout_closes_the_connections_it_holds() -> None:
    async def main() -> tuple[float, object]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("timeout", timeout=0))
            await later(r.clock, 4, lambda: r.netem.remove_toxic("timeout_downstream"))
            return await r.timed()

    elapsed, outcome = run_virtual(main)
    assert elapsed == 4.0
    disconnected(outcome)


@pytest.mark.parametrize(("stream", "server_sees_it"), [("upstream", False), ("downstream", True)])
def test_timeout_drops_the_data_of_its_stream_only(stream: str, server_sees_it: bool) -> None:
    async def main() -> tuple[float, object, int]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("timeout", stream, timeout=200))  # type: ignore[arg-type]
            return await create(r)

    elapsed, outcome, created = run_virtual(main)
    assert elapsed == 0.2
    disconnected(outcome)
    assert created == (1 if server_sees_it else 0)


@pytest.mark.parametrize(("stream", "server_sees_it"), [("upstream", False), ("downstream", True)])
def test_reset_peer_resets_after_its_timeout(stream: str, server_sees_it: bool) -> None:
    async def main() -> tuple[float, object, int]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("reset_peer", stream, timeout=200))  # type: ignore[arg-type]
            return await create(r)

    elapsed, outcome, created = run_virtual(main)
    assert elapsed == 0.2
    reset(outcome)
    assert created == (1 if server_sees_it else 0)


def test_reset_peer_added_mid_request_closes_with_a_fin() -> None:
    """Toxiproxy sets SO_LINGER 0 only on connections opened while a reset_peer toxic exists."""

    async def main() -> object:
        async with rig() as r:
            await r.netem.add_toxic(toxic("latency", latency=1000))
            await later(r.clock, 0.5, lambda: r.netem.add_toxic(toxic("reset_peer")))
            return (await r.timed())[1]

    disconnected(run_virtual(main))


def response_bytes() -> tuple[int, int]:
    """(head size, total size) of the rig's patient read on the wire."""

    async def main() -> tuple[int, int]:
        async with rig() as r:
            response = await r.client.get(f"/fhir/R4/Patient/{r.patient}", headers=r.headers)
            wire = response_wire(response, response.content)
            return len(wire) - len(response.content), len(wire)

    return run_virtual(main)


def limited(limit: int, stream: str = "downstream") -> object:
    async def main() -> object:
        async with rig() as r:
            await r.netem.add_toxic(toxic("limit_data", stream, bytes=limit))  # type: ignore[arg-type]
            return (await r.timed())[1]

    return run_virtual(main)


def test_limit_data_cuts_the_response_where_httpx_would_notice() -> None:
    head, total = response_bytes()
    disconnected(limited(0))
    disconnected(limited(head - 1))  # no complete head: no response at all
    cut = limited(head + 10)  # the head, then 10 body bytes, then the close
    assert isinstance(cut, httpx.RemoteProtocolError)
    assert str(cut) == (f"peer closed connection without sending complete message body "
                        f"(received 10 bytes, expected {total - head})")
    whole = limited(total)  # exactly everything, then the close: the client has its answer
    assert isinstance(whole, httpx.Response)
    assert whole.json()["resourceType"] == "Patient"


def test_limit_data_upstream_cuts_the_request() -> None:
    disconnected(limited(50, "upstream"))
    assert isinstance(limited(100_000, "upstream"), httpx.Response)


def test_proxy_down_refuses_new_connections_and_closes_live_ones() -> None:
    async def main() -> list[tuple[float, object]]:
        async with rig() as r:
            await r.netem.add_toxic(toxic("latency", latency=1000))
            await later(r.clock, 0.4, lambda: r.netem.set_enabled(False))
            in_flight = await r.timed()
            refused = await r.timed()
            await r.netem.set_enabled(True)
            back = await r.timed()
            return [in_flight, refused, back]

    (t1, in_flight), (t2, refused), (t3, back) = run_virtual(main)
    assert t1 == 0.4
    disconnected(in_flight)
    assert (t2, type(refused), str(refused)) == (0.0, httpx.ConnectError, "All connection attempts failed")
    assert t3 == 1.0
    assert isinstance(back, httpx.Response)


def test_connections_opened_with_reset_peer_on_the_proxy_are_reset_by_any_close() -> None:
    """Toxiproxy's SO_LINGER 0 holds whatever the toxicity: a proxy_down then resets, not closes."""

    async def main() -> object:
        async with rig() as r:
            await r.netem.add_toxic(toxic("reset_peer", toxicity=0.0))
            await r.netem.add_toxic(toxic("latency", latency=1000))
            await later(r.clock, 0.5, lambda: r.netem.set_enabled(False))
            return (await r.timed())[1]

    reset(run_virtual(main))
