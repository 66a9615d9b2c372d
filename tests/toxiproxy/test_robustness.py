"""Bad input and bad clients: nothing crashes the server, nothing leaks a task or a socket.

File descriptors are counted in this process (`/proc/self/fd`), where the embedded server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from simulators.toxiproxy import serve_toxiproxy
from tests.toxiproxy.support import (
    TIMEOUT,
    BackgroundToxiproxy,
    ToxiproxyApi,
    connect,
    open_fds,
    recv_exactly,
    round_trip,
    upstream_server,
    wait_until,
)

pytestmark = pytest.mark.real_network

GARBAGE = [b"", b"\x00\xff\xfe", b"{" * 5000, b"[" * 20000, b'{"name": "\xff\xfe"', b"null", b"true", b"-", b"1e999",
           b'{"name": {"a": [1, 2, {"b": null}]}}', b'{"toxicity": 1e40}', b'"\\u12"', b"[1,]", b"{}garbage"]
ENDPOINTS = [("POST", "/proxies"), ("POST", "/populate"), ("PATCH", "/proxies/p"), ("POST", "/proxies/p/toxics"),
             ("PATCH", "/proxies/p/toxics/latency_downstream"), ("POST", "/reset")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_garbage_bodies_get_a_4xx_and_change_nothing(api: ToxiproxyApi, method: str, path: str) -> None:
    api.create("p", "127.0.0.1:1")
    api.add_toxic("p", "latency")
    before = api.http.get("/proxies").json()
    for body in GARBAGE:
        response = api.http.request(method, path, content=body)
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"], body
    if path != "/reset":
        assert api.http.get("/proxies").json() == before


def test_a_huge_body_is_refused_and_the_server_lives_on(api: ToxiproxyApi) -> None:
    response = api.http.post("/proxies", content=b'{"name": "' + b"x" * 5_000_000 + b'"}')
    assert 400 <= response.status_code < 500
    assert api.http.get("/proxies").status_code == 200


@pytest.mark.parametrize("request_bytes", [b"NOT HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                                           b"GET /version HTTP/1.1\r\n" + b"X-Long: " + b"a" * 2_000_000 + b"\r\n\r\n"])
def test_malformed_requests_get_a_plain_4xx_and_a_close(api: ToxiproxyApi, request_bytes: bytes) -> None:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request_bytes)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while part := sock.recv(65536):
                reply += part
    assert reply.startswith(b"HTTP/1.1 4"), reply[:100]
    assert api.http.get("/version").status_code == 200


def test_api_clients_that_vanish_mid_request(api: ToxiproxyApi) -> None:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    for partial in (b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na",
                    b"GET /prox", b"POST /populate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[{"):
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(partial)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert api.http.get("/proxies").json() == {}


def test_concurrent_api_calls_under_traffic(api: ToxiproxyApi) -> None:
    with upstream_server() as upstream:
        proxy = api.create("p", upstream.address)
        errors: list[str] = []

        def churn(worker: int) -> None:
            with httpx.Client(base_url=api.url, timeout=TIMEOUT) as http:
                for i in range(15):
                    name = f"t{worker}-{i}"
                    created = http.post("/proxies/p/toxics", json={"name": name, "type": "latency",
                                                                  "attributes": {"latency": 1}})
                    deleted = http.delete(f"/proxies/p/toxics/{name}")
                    if (created.status_code, deleted.status_code) != (200, 204):
                        errors.append(f"{created.status_code} {deleted.status_code}")

        workers = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
        for worker in workers:
            worker.start()
        with connect(proxy["listen"]) as client:
            for i in range(60):
                message = b"%04d" % i
                assert round_trip(client, message)[0] == message
        for worker in workers:
            worker.join(timeout=30)
    assert errors == []
    assert api.http.get("/proxies/p/toxics").json() == []


@pytest.fixture
def private_server(embedded: None) -> Iterator[BackgroundToxiproxy]:
    with BackgroundToxiproxy(seed=3) as server:
        yield server


def test_bad_clients_leak_no_socket_and_no_task(private_server: BackgroundToxiproxy) -> None:
    api = ToxiproxyApi(private_server.url)
    with upstream_server() as upstream, upstream_server(lambda conn, _: conn.close()) as slammer:
        echo = api.create("echo", upstream.address)
        slam = api.create("slam", slammer.address)
        with connect(echo["listen"]) as warm:
            round_trip(warm)
        assert wait_until(lambda: private_server.tasks() <= 1)
        fds, tasks = open_fds(), private_server.tasks()

        api.add_toxic("echo", "latency", attributes={"latency": 50})
        api.add_toxic("echo", "slicer", stream="upstream", attributes={"average_size": 100, "delay": 10})
        for _ in range(10):  # disconnect abruptly (RST) with data in flight
            sock = connect(echo["listen"])
            sock.sendall(b"x" * 50_000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        never_read = [connect(echo["listen"]) for _ in range(3)]  # never read: the echo backs up
        for sock in never_read:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                for _ in range(200):
                    sock.send(b"y" * 65536)
        for _ in range(5):  # the upstream hangs up at once
            with connect(slam["listen"]) as sock:
                sock.settimeout(2)
                assert recv_exactly(sock, 1) == b""
        api.http.post("/reset")  # toxics leave live connections mid-stream
        for sock in never_read:
            sock.close()
        with connect(echo["listen"]) as ok:
            assert round_trip(ok)[0] == b"ping"

        assert wait_until(lambda: private_server.tasks() <= tasks, timeout=5), private_server.tasks()
        assert wait_until(lambda: open_fds() <= fds, timeout=5), (open_fds(), fds)
        api.clear()
    api.close()


def test_serve_toxiproxy_leaves_nothing_behind(embedded: None) -> None:
    async def main() -> None:
        baseline = open_fds()
        with upstream_server() as upstream:
            async with serve_toxiproxy() as url:
                assert url.startswith("http://127.0.0.1:")
                async with httpx.AsyncClient(base_url=url) as http:
                    proxy = (await http.post("/proxies", json={"name": "p", "upstream": upstream.address})).json()
                    assert proxy["listen"].startswith("127.0.0.1:")  # the lab default: loopback, even for ""
                    await http.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 5000}})
                    host, port = proxy["listen"].rsplit(":", 1)
                    reader, writer = await asyncio.open_connection(host, int(port))
                    writer.write(b"held by the latency toxic")
                    await writer.drain()
                    idle = await asyncio.open_connection(*url.removeprefix("http://").rsplit(":", 1))
                    await asyncio.sleep(0.05)  # real-time: let the proxy pick the data up
            assert await reader.read() == b""  # the server went away with the connection
            writer.close()
            idle[1].close()
            await writer.wait_closed()
            await idle[1].wait_closed()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert open_fds() <= baseline

    started = time.monotonic()  # real-time: shutdown must not wait for the 5 s latency
    asyncio.run(main())
    assert time.monotonic() - started < 3  # real-time: as above


def test_metrics_count_bytes_per_direction(embedded: None) -> None:
    with BackgroundToxiproxy(proxy_metrics=True) as server, upstream_server() as upstream:
        api = ToxiproxyApi(server.url)
        proxy = api.create("m", upstream.address)
        with connect(proxy["listen"]) as client:
            assert round_trip(client, b"hello")[0] == b"hello"

        def counted() -> bool:
            return 'direction="upstream"' in api.http.get("/metrics").text

        assert wait_until(counted)
        text = api.http.get("/metrics").text
        labels = f'listener="{proxy["listen"]}",proxy="m",upstream="{upstream.address}"'
        assert f'toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 5' in text
        assert f'toxiproxy_proxy_sent_bytes_total{{direction="downstream",{labels}}} 5' in text
        api.close()
