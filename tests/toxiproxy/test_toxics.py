"""Toxiproxy's TCP behaviour and toxics, black-box: `../shared/reference/toxiproxy.md` §2 and §3 items 32-45.

Timing bounds hold on a loaded 2-core machine: a delay is never shorter than asked (minus 5 ms of
timer rounding) and at most `SLACK` longer. Runs against the embedded server, or against any
Toxiproxy when `TOXIPROXY_URL` is set.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

import pytest

from tests.toxiproxy.support import (
    ToxiproxyApi,
    connect,
    ends_within,
    read_to_end,
    record,
    recv_exactly,
    round_trip,
    upstream_server,
    wait_until,
)

pytestmark = pytest.mark.real_network

SLACK = 0.25  # seconds a delay may overrun on a busy machine
EARLY = 0.005  # timer rounding


def assert_delay(measured: float, expected: float) -> None:
    assert expected - EARLY <= measured <= expected + SLACK, f"{measured:.3f}s, expected {expected:.3f}s"


def now() -> float:
    return time.monotonic()  # real-time: measuring the proxy


# latency ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("up", "down"), [(100, 0), (0, 100), (100, 100), (200, 50), (0, 0)])
def test_latency_in_each_direction(api: ToxiproxyApi, up: int, down: int) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        if up:
            api.add_toxic("p", "latency", stream="upstream", attributes={"latency": up})
        if down:
            api.add_toxic("p", "latency", stream="downstream", attributes={"latency": down})
        with connect(proxy["listen"]) as client:
            data, rtt = round_trip(client)
    assert data == b"ping"
    assert_delay(rtt, (up + down) / 1000)


def test_upstream_latency_delays_arrival_at_the_server(api: ToxiproxyApi) -> None:
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", stream="upstream", attributes={"latency": 100, "jitter": 10})
        with connect(proxy["listen"]) as client:
            client.sendall(b"x")  # connection first, so the dial time is not counted
            assert wait_until(lambda: bool(upstream.arrivals))
            sent = now()
            client.sendall(b"y")
            assert wait_until(lambda: len(upstream.arrivals) == 2)
    assert 0.09 - EARLY <= upstream.arrivals[1] - sent <= 0.11 + SLACK


def test_two_latency_toxics_stack(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", name="a", stream="upstream", attributes={"latency": 150})
        api.add_toxic("p", "latency", name="b", stream="upstream", attributes={"latency": 150})
        with connect(proxy["listen"]) as client:
            assert_delay(round_trip(client)[1], 0.3)


def test_latency_does_not_throttle_a_stream(api: ToxiproxyApi) -> None:
    payload = bytes(range(256)) * 32768  # 8 MiB: with per-chunk delays adding up this would take many seconds
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", stream="downstream", attributes={"latency": 100})
        with connect(proxy["listen"]) as client:
            started = now()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                sending = pool.submit(client.sendall, payload)
                received = recv_exactly(client, len(payload))
                sending.result()
            elapsed = now() - started
    assert received == payload
    assert 0.1 - EARLY <= elapsed < 0.1 + 2.0  # >= 4 MiB/s, and delays did not accumulate


def test_toxics_apply_to_live_connections(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[1] < 0.1
            api.add_toxic("p", "latency", stream="upstream", attributes={"latency": 150})
            assert_delay(round_trip(client)[1], 0.15)
            api.http.patch("/proxies/p/toxics/latency_upstream", json={"attributes": {"latency": 60}})
            assert_delay(round_trip(client)[1], 0.06)
            api.remove_toxic("p", "latency_upstream")
            assert round_trip(client)[1] < 0.1


def test_toxicity_is_decided_per_connection(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", toxicity=0.5, attributes={"latency": 150})

        def two_round_trips(_: int) -> list[float]:
            with connect(proxy["listen"]) as client:
                return [round_trip(client)[1] for _ in range(2)]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            rounds = list(pool.map(two_round_trips, range(16)))
    slow = [all(t >= 0.145 for t in times) for times in rounds]
    fast = [all(t < 0.145 for t in times) for times in rounds]
    assert all(s or f for s, f in zip(slow, fast, strict=True)), rounds  # never mixed within a connection
    assert any(slow), rounds
    assert any(fast), rounds


# bandwidth, slicer, limit_data ---------------------------------------------------------------------


def test_bandwidth_limits_the_rate(api: ToxiproxyApi) -> None:
    payload = bytes(range(256)) * 800  # 204 800 B at 1000 KB/s (1 KB = 1000 B): 0.2048 s
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "bandwidth", stream="upstream", attributes={"rate": 1000})
        with connect(proxy["listen"]) as client:
            client.sendall(b"x")
            assert wait_until(lambda: bool(upstream.arrivals))
            started = now()
            client.sendall(payload)
            assert wait_until(lambda: sum(map(len, upstream.received)) == len(payload) + 1)
    assert b"".join(upstream.received)[1:] == payload
    assert_delay(upstream.arrivals[-1] - started, 0.2048 - 0.02)


def test_slicer_delivers_intact_data_in_pieces(api: ToxiproxyApi) -> None:
    payload = bytes(range(200))
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "slicer", attributes={"average_size": 10, "size_variation": 5, "delay": 10_000})
        with connect(proxy["listen"]) as client:
            started = now()
            client.sendall(payload)
            reads: list[bytes] = []
            while sum(map(len, reads)) < len(payload):
                part = client.recv(4096)
                assert part
                reads.append(part)
            elapsed = now() - started
    assert b"".join(reads) == payload
    assert len(reads) >= 8  # ~13-40 pieces 10 ms apart; a busy reader may merge a few
    assert elapsed >= 0.1


def test_slicer_with_average_one_sends_single_bytes(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "slicer", attributes={"average_size": 1, "size_variation": 0, "delay": 15_000})
        with connect(proxy["listen"]) as client:
            client.sendall(b"abcdefghijkl")
            reads = [client.recv(4096) for _ in range(6)]
    assert all(len(r) <= 2 for r in reads), reads
    assert b"".join(reads) == b"abcdefghijkl"[:sum(map(len, reads))]


@pytest.mark.parametrize(("limit", "writes", "expected"), [
    (100, [50], 50), (100, [100], 100), (100, [150], 100), (100, [25, 25, 25, 25], 100), (100, [90, 20], 100),
    (0, [10], 0), (10, [7, 9], 10),
])
def test_limit_data(api: ToxiproxyApi, limit: int, writes: list[int], expected: int) -> None:
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "limit_data", stream="upstream", attributes={"bytes": limit})
        stream = bytes(i % 251 for i in range(sum(writes)))
        with connect(proxy["listen"]) as client:
            offset = 0
            for size in writes:
                client.sendall(stream[offset:offset + size])
                offset += size
                time.sleep(0.02)  # real-time: separate chunks, as in the reference probes
            closes = expected == limit
            how, _ = ends_within(client, 1.0 if closes else 0.3)
        assert how == ("eof" if closes else "timeout")
        assert wait_until(lambda: sum(map(len, upstream.received)) >= expected)
        assert b"".join(upstream.received) == stream[:expected]


# timeout, reset_peer, slow_close -------------------------------------------------------------------


def test_timeout_drops_data_then_closes(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "timeout", attributes={"timeout": 150})
        with connect(proxy["listen"]) as client:
            client.sendall(b"ping")
            data, how = read_to_end(client)
    assert (data, how) == (b"", "eof")


def test_timeout_closes_after_its_timeout(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "timeout", stream="upstream", attributes={"timeout": 150})
        with connect(proxy["listen"]) as client:
            how, elapsed = ends_within(client, 2)
    assert how == "eof"
    assert_delay(elapsed, 0.15)


def test_removing_a_zero_timeout_closes_both_sides(api: ToxiproxyApi) -> None:
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "timeout", stream="upstream", attributes={"timeout": 0})
        with connect(proxy["listen"]) as client:
            client.sendall(b"dropped")
            assert ends_within(client, 0.3)[0] == "timeout"  # no data, no close
            api.remove_toxic("p", "timeout_upstream")
            how, elapsed = ends_within(client, 2)
        assert (how, elapsed < 1) == ("eof", True)
        assert upstream.closed_by_peer.wait(1)
        assert upstream.received == []


def test_removing_latency_beside_a_blocking_timeout_does_not_hang(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", stream="upstream", attributes={"latency": 300})
        api.add_toxic("p", "timeout", stream="upstream", attributes={"timeout": 0})
        with connect(proxy["listen"]) as client:
            client.sendall(b"in flight")
            started = now()
            api.remove_toxic("p", "latency_upstream")
            assert now() - started < 1


@pytest.mark.parametrize(("stream", "timeout"), [("downstream", 0), ("upstream", 0), ("downstream", 100),
                                                 ("upstream", 100)])
def test_reset_peer_resets_after_data(api: ToxiproxyApi, stream: str, timeout: int) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "reset_peer", stream=stream, attributes={"timeout": timeout})
        with connect(proxy["listen"]) as client:
            started = now()
            client.sendall(b"ping")
            assert read_to_end(client) == (b"", "reset")
            elapsed = now() - started
            assert client.recv(100) == b""  # after the reset: EOF
    assert_delay(elapsed, timeout / 1000)


def test_reset_peer_waits_for_data(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "reset_peer", attributes={"timeout": 0})
        with connect(proxy["listen"]) as client:
            assert ends_within(client, 0.3)[0] == "timeout"


def test_reset_peer_added_to_a_live_connection_closes_with_fin(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            api.add_toxic("p", "reset_peer", attributes={"timeout": 0})
            client.sendall(b"ping")
            assert read_to_end(client) == (b"", "eof")


@pytest.mark.parametrize(("with_toxic", "ending"), [(False, "eof"), (True, "reset")])
def test_reset_peer_with_toxicity_zero_still_turns_a_close_into_a_reset(api: ToxiproxyApi, with_toxic: bool,
                                                                        ending: str) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        if with_toxic:
            api.add_toxic("p", "reset_peer", toxicity=0, attributes={"timeout": 0})
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"  # the toxic is not active
            client.shutdown(socket.SHUT_WR)  # the proxy closes both sides
            assert read_to_end(client) == (b"", ending)


@pytest.mark.parametrize("delay", [0, 300])
def test_slow_close_delays_the_close(api: ToxiproxyApi, delay: int) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "slow_close", attributes={"delay": delay})
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            client.shutdown(socket.SHUT_WR)
            how, elapsed = ends_within(client, 2)
    assert how == "eof"
    assert_delay(elapsed, delay / 1000)


def test_toxicity_zero_is_a_noop_until_updated(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "timeout", toxicity=0, attributes={"timeout": 0})
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            api.http.patch("/proxies/p/toxics/timeout_downstream", json={"toxicity": 1, "attributes": {"timeout": 100}})
            how, elapsed = ends_within(client, 2)
    assert how == "eof"
    assert_delay(elapsed, 0.1 - 0.02)  # counted from the update's response, a little after the toxic restarted


def test_limit_data_counts_across_updates_on_a_connection(api: ToxiproxyApi) -> None:
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "limit_data", stream="upstream", attributes={"bytes": 10})
        with connect(proxy["listen"]) as client:
            client.sendall(b"0123456")
            assert wait_until(lambda: sum(map(len, upstream.received)) == 7)
            api.http.patch("/proxies/p/toxics/limit_data_upstream", json={"attributes": {"bytes": 12}})
            client.sendall(b"789abcdef")
            assert ends_within(client, 2)[0] == "eof"
        assert wait_until(lambda: b"".join(upstream.received) == b"0123456789ab")


def test_bandwidth_without_a_rate_passes_everything(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "bandwidth", attributes={"rate": 0})
        with connect(proxy["listen"]) as client:
            data, rtt = round_trip(client, b"z" * 100_000)
    assert data == b"z" * 100_000
    assert rtt < 0.5
