"""Helpers for the Toxiproxy conformance suite: the server in a background loop, upstreams, sockets.

The suite is black-box: it talks HTTP to an API URL and TCP to the proxies, so it runs unchanged
against the embedded server (default) and against a real Toxiproxy (`TOXIPROXY_URL`). Upstreams are
small threaded TCP servers on 127.0.0.1, so a Toxiproxy on this host can reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.toxiproxy import serve_toxiproxy

TIMEOUT = 5.0  # no socket operation in the suite waits longer than this
ERROR_TYPE = "text/plain; charset=utf-8"  # Go's http.Error


class BackgroundToxiproxy:
    """`serve_toxiproxy` on its own event loop in a thread, for synchronous tests and clients."""

    def __init__(self, seed: int = 7, **options: Any) -> None:
        self._options = options
        self._seed = seed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="toxiproxy", daemon=True)
        self._context: AbstractAsyncContextManager[str] | None = None
        self.url = ""

    def __enter__(self) -> BackgroundToxiproxy:
        self._thread.start()
        self._context = serve_toxiproxy(rng=random.Random(self._seed), **self._options)
        self.url = self.run(self._context.__aenter__())
        return self

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def tasks(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        return int(self.run(count()))

    def __exit__(self, *exc: object) -> None:
        try:
            if self._context is not None:
                self.run(self._context.__aexit__(None, None, None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout  # real-time: tests poll the real world
    while time.monotonic() < deadline:  # real-time: as above
        if condition():
            return True
        time.sleep(0.02)  # real-time: polling interval
    return condition()


# --------------------------------------------------------------------------- upstream servers


@dataclass
class Upstream:
    """A threaded TCP server on 127.0.0.1: `handler(conn, upstream)` runs per accepted connection."""

    handler: Callable[[socket.socket, Upstream], None]
    received: list[bytes] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    conns: list[socket.socket] = field(default_factory=list)
    closed_by_peer: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(TIMEOUT)
            self.conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            self.handler(conn, self)

    def close(self) -> None:
        self._stop = True
        for sock in (self.sock, *self.conns):  # shutdown wakes a thread blocked in accept() or recv()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._acceptor.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)


def echo(conn: socket.socket, upstream: Upstream) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)
    upstream.closed_by_peer.set()


def record(conn: socket.socket, upstream: Upstream) -> None:
    while data := conn.recv(65536):
        upstream.received.append(data)
        upstream.arrivals.append(time.monotonic())  # real-time: when the upstream saw it
    upstream.closed_by_peer.set()


def reply_after_eof(conn: socket.socket, upstream: Upstream) -> None:
    total = 0
    while data := conn.recv(65536):
        total += len(data)
    conn.sendall(b"got %d" % total)
    conn.close()


@contextlib.contextmanager
def upstream_server(handler: Callable[[socket.socket, Upstream], None] = echo) -> Iterator[Upstream]:
    server = Upstream(handler)
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- the API and clients


class ToxiproxyApi:
    """The HTTP API under test, with helpers that fail loudly on unexpected statuses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=TIMEOUT)

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0", **extra: Any) -> dict[str, Any]:
        response = self.http.post("/proxies", json={"name": name, "listen": listen, "upstream": upstream, **extra})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def add_toxic(self, proxy: str, type: str, **fields: Any) -> dict[str, Any]:
        response = self.http.post(f"/proxies/{proxy}/toxics", json={"type": type, **fields})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def remove_toxic(self, proxy: str, name: str) -> None:
        response = self.http.delete(f"/proxies/{proxy}/toxics/{name}")
        assert response.status_code == 204, response.text

    def clear(self) -> None:
        for name in self.http.get("/proxies").json():
            self.http.delete(f"/proxies/{name}")

    def close(self) -> None:
        self.http.close()


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    """An `http.Error` body exactly as Toxiproxy writes it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == ERROR_TYPE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"


def address(listen: str) -> tuple[str, int]:
    host, port = listen.rsplit(":", 1)
    host = host.strip("[]")
    return ("127.0.0.1" if host in ("", "::", "0.0.0.0") else host), int(port)


def connect(listen: str) -> socket.socket:
    sock = socket.create_connection(address(listen), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def accepts(listen: str) -> bool:
    try:
        with socket.create_connection(address(listen), timeout=1):
            return True
    except OSError:
        return False


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            break
        data += part
    return data


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> tuple[bytes, float]:
    started = time.monotonic()  # real-time: measuring the proxy
    sock.sendall(payload)
    data = recv_exactly(sock, len(payload))
    return data, time.monotonic() - started  # real-time: as above


def read_to_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how it ended: "eof", "reset" or "timeout"."""
    data = b""
    try:
        while part := sock.recv(65536):
            data += part
    except ConnectionResetError:
        return data, "reset"
    except TimeoutError:
        return data, "timeout"
    return data, "eof"


def ends_within(sock: socket.socket, seconds: float) -> tuple[str, float]:
    """How the connection ends (reading and discarding) and after how long."""
    sock.settimeout(seconds)
    started = time.monotonic()  # real-time: measuring the proxy
    _, how = read_to_end(sock)
    return how, time.monotonic() - started  # real-time: as above
