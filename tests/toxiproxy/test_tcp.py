"""Toxiproxy's TCP proxying, black-box: passthrough, live changes, disable/delete (reference §2, §3 items 32-33, 44-45).

Timing bounds hold on a loaded 2-core machine: a delay is never shorter than asked (minus 5 ms of
timer rounding) and at most `SLACK` longer. Runs against the embedded server, or against any
Toxiproxy when `TOXIPROXY_URL` is set.
"""

from __future__ import annotations

import socket
import statistics
import time

import pytest

from tests.toxiproxy.support import (
    ToxiproxyApi,
    connect,
    ends_within,
    read_to_end,
    record,
    recv_exactly,
    reply_after_eof,
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


# passthrough --------------------------------------------------------------------------------------


@pytest.mark.parametrize("parts", [[b"hello world"], [b"hello ", b"world"], [bytes(range(256)).hex().encode() * 128]])
def test_bytes_reach_the_upstream_unchanged(api: ToxiproxyApi, parts: list[bytes]) -> None:
    with upstream_server(record) as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            for part in parts:
                client.sendall(part)
        assert wait_until(upstream.closed_by_peer.is_set)
        assert b"".join(upstream.received) == b"".join(parts)


def test_echo_round_trips_and_big_messages(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            assert round_trip(client, b"x")[0] == b"x"
            big = bytes(range(256)) * 4096
            client.sendall(big)
            assert recv_exactly(client, len(big)) == big


def test_unreachable_upstream_closes_the_client(api: ToxiproxyApi) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused
        proxy = api.create("p", f"127.0.0.1:{placeholder.getsockname()[1]}")
        with connect(proxy["listen"]) as client:
            how, elapsed = ends_within(client, 2)
    assert how in ("eof", "reset")
    assert elapsed < 0.5


def test_half_close_closes_the_whole_connection(api: ToxiproxyApi) -> None:
    with upstream_server(reply_after_eof) as upstream:
        with socket.create_connection(("127.0.0.1", int(upstream.address.split(":")[1])), timeout=5) as direct:
            direct.sendall(b"hello")
            direct.shutdown(socket.SHUT_WR)
            assert read_to_end(direct) == (b"got 5", "eof")
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            client.sendall(b"hello")
            client.shutdown(socket.SHUT_WR)
            assert read_to_end(client) == (b"", "eof")


# live changes, disable, delete ---------------------------------------------------------------------


def test_add_remove_and_reset_under_traffic_lose_and_reorder_nothing(api: ToxiproxyApi) -> None:
    changes = [
        lambda: api.add_toxic("p", "latency", attributes={"latency": 2, "jitter": 2}),
        lambda: api.add_toxic("p", "slicer", stream="upstream", attributes={"average_size": 3, "size_variation": 1}),
        lambda: api.add_toxic("p", "bandwidth", attributes={"rate": 10_000}),
        lambda: api.add_toxic("p", "noop", name="n"),
        lambda: api.remove_toxic("p", "latency_downstream"),
        lambda: api.http.patch("/proxies/p/toxics/slicer_upstream", json={"attributes": {"average_size": 7}}),
        lambda: api.remove_toxic("p", "n"),
        lambda: api.http.post("/reset"),
    ]
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            for i in range(100):
                message = b"message %03d;" % i
                client.sendall(message)
                if i % 12 == 5:
                    changes[(i // 12) % len(changes)]()
                assert recv_exactly(client, len(message)) == message


def test_disable_and_delete_drop_live_connections(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            assert api.http.patch("/proxies/p", json={"enabled": False}).status_code == 200
            assert ends_within(client, 2)[0] in ("eof", "reset")
        api.http.patch("/proxies/p", json={"enabled": True})
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            assert api.http.delete("/proxies/p").status_code == 204
            assert ends_within(client, 2)[0] in ("eof", "reset")


def test_toxics_survive_disable_and_enable(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        api.add_toxic("p", "latency", attributes={"latency": 100})
        api.http.patch("/proxies/p", json={"enabled": False})
        api.http.patch("/proxies/p", json={"enabled": True})
        assert [t["name"] for t in api.http.get("/proxies/p/toxics").json()] == ["latency_downstream"]
        with connect(proxy["listen"]) as client:
            assert_delay(round_trip(client)[1], 0.1)


def test_added_latency_without_toxics_is_small(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        port = int(upstream.address.split(":")[1])
        with connect(proxy["listen"]) as client, socket.create_connection(("127.0.0.1", port), timeout=5) as direct:
            direct.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            proxied = statistics.median(round_trip(client)[1] for _ in range(200))
            straight = statistics.median(round_trip(direct)[1] for _ in range(200))
    assert proxied - straight < 0.002, (proxied, straight)  # Toxiproxy's own check is < 300 us per direction


def test_an_equivalent_listen_is_not_a_change(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        port = proxy["listen"].rsplit(":", 1)[1]
        with connect(proxy["listen"]) as client:
            assert round_trip(client)[0] == b"ping"
            updated = api.http.patch("/proxies/p", json={"listen": f"localhost:{port}"})
            assert updated.json()["listen"] == proxy["listen"]
            assert round_trip(client)[0] == b"ping"  # the connection survived
            api.http.patch("/proxies/p", json={"upstream": upstream.address + " "})  # a real change
            assert ends_within(client, 2)[0] in ("eof", "reset")


def test_reset_closes_only_what_a_removed_timeout_held(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        held = api.create("held", upstream.address)
        slow = api.create("slow", upstream.address)
        api.add_toxic("held", "timeout", attributes={"timeout": 0})
        api.add_toxic("slow", "latency", attributes={"latency": 50})
        with connect(held["listen"]) as cut, connect(slow["listen"]) as kept:
            assert_delay(round_trip(kept)[1], 0.05)
            assert api.http.post("/reset").status_code == 204
            assert ends_within(cut, 2)[0] == "eof"
            assert round_trip(kept)[1] < 0.05
