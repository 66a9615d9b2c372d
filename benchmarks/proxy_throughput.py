"""Pass-through cost of the Toxiproxy-compatible proxy (no toxics): proxied vs direct, in the same run.

    .venv/bin/python benchmarks/proxy_throughput.py [--repeat 3] [--seconds 2]

Three processes on loopback, as a game day runs them: the upstreams, the proxy (`python -m
simulators.toxiproxy.cli`, exactly what `ehrlab proxy` starts) and this client. Each measurement runs
direct to the upstream and through the proxy, alternately, `--repeat` times; the best of each is
kept (the machine is shared and noisy) and reported as a ratio. Measures:

- small HTTP request/response: an httpx client, 4 keep-alive connections, against a uvicorn app
  answering a 60-byte JSON body (the shape of the lab's FHIR traffic): requests/s;
- echo round trip: 64 bytes, one connection, one at a time: p50 and p99 per round trip, and the
  latency the proxy adds (both of its hops);
- bulk: 64 MiB one way into a discarding upstream: MB/s.

Targets: small-request throughput >= 80 % of direct; added p50 latency < 0.3 ms. Every phase is
bounded by `--seconds` or a fixed byte count; everything stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
BULK_BYTES = 64 * 1024 * 1024
ECHO_SIZE = 64
HTTP_CONNECTIONS = 4
TARGET_THROUGHPUT = 0.80
TARGET_ADDED_P50_MS = 0.3


# --------------------------------------------------------------------------- upstreams (own process)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _Sink(asyncio.Protocol):
    """Discards bytes; answers b"done" once it has `BULK_BYTES`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.count = 0

    def data_received(self, data: bytes) -> None:
        self.count += len(data)
        if self.count >= BULK_BYTES:
            self.transport.write(b"done")
            self.count = 0


async def _fhir_like(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                     send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    body = b'{"resourceType":"Patient","id":"p1","active":true,"gender":"x"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/fhir+json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _serve_upstreams(pipe: Connection) -> None:
    import uvicorn

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo = await loop.create_server(_Echo, "127.0.0.1", 0)
        sink = await loop.create_server(_Sink, "127.0.0.1", 0)
        config = uvicorn.Config(_fhir_like, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                lifespan="off", http="h11")
        server = uvicorn.Server(config)
        # Bound here, so its port is known at once. proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on
        # sockets accepted from a listener that says it is TCP; without it h11's separate header and
        # body writes meet Nagle and delayed ACKs (40 ms per response).
        http_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        http_sock.bind(("127.0.0.1", 0))
        http_sock.listen(128)
        http_port = http_sock.getsockname()[1]
        serving = asyncio.create_task(server.serve(sockets=[http_sock]))
        ports = [s.sockets[0].getsockname()[1] for s in (echo, sink)]
        pipe.send((*ports, http_port))
        await loop.run_in_executor(None, pipe.recv)  # until the client says stop
        server.should_exit = True
        await serving

    asyncio.run(main())


# --------------------------------------------------------------------------- measurements (client)


async def echo_round_trips(port: int, seconds: float) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload, samples = b"x" * ECHO_SIZE, []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(payload)
        await reader.readexactly(ECHO_SIZE)
        samples.append(time.perf_counter() - started)
    writer.close()
    await writer.wait_closed()
    return samples[10:]  # warm-up


async def http_throughput(port: int, seconds: float) -> float:
    limits = httpx.Limits(max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        for _ in range(20):
            (await client.get("/Patient/p1")).raise_for_status()
        done = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.get("/Patient/p1")).raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(HTTP_CONNECTIONS)))
        return done / (time.perf_counter() - started)


async def bulk_rate(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = b"\0" * (1024 * 1024)
    started = time.perf_counter()
    for _ in range(BULK_BYTES // len(block)):
        writer.write(block)
        await writer.drain()
    await reader.readexactly(4)
    elapsed = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    return BULK_BYTES / elapsed / 1e6


# --------------------------------------------------------------------------- orchestration


def _start_proxy() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "simulators.toxiproxy.cli", "--port", "0", "--seed", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found = re.search(r"on (http://\S+) ", proc.stdout.readline())
    if not found:
        proc.kill()
        raise RuntimeError("the proxy did not start")
    return proc, found.group(1)


def _proxy_port(api: httpx.Client, name: str, upstream_port: int) -> int:
    response = api.post("/proxies", json={"name": name, "upstream": f"127.0.0.1:{upstream_port}",
                                          "listen": "127.0.0.1:0"})
    response.raise_for_status()
    return int(response.json()["listen"].rsplit(":", 1)[1])


def _alternate(repeat: int, direct: Callable[[], Awaitable[T]], proxied: Callable[[], Awaitable[T]]
               ) -> tuple[list[T], list[T]]:
    """Run direct and proxied in turn, each on a fresh event loop, `repeat` times."""
    a: list[T] = []
    b: list[T] = []
    for _ in range(repeat):
        a.append(_run(direct))
        b.append(_run(proxied))
    return a, b


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def _percentile_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each timed phase")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    upstreams = multiprocessing.Process(target=_serve_upstreams, args=(child,), daemon=True)
    upstreams.start()
    echo_port, sink_port, http_port = parent.recv()
    proxy, url = _start_proxy()
    try:
        with httpx.Client(base_url=url, timeout=10) as api:
            p_echo, p_sink, p_http = (_proxy_port(api, n, p) for n, p in
                                      (("echo", echo_port), ("sink", sink_port), ("http", http_port)))
        rps_d, rps_p = _alternate(args.repeat, lambda: http_throughput(http_port, args.seconds),
                                  lambda: http_throughput(p_http, args.seconds))
        rt_d, rt_p = _alternate(args.repeat, lambda: echo_round_trips(echo_port, args.seconds),
                                lambda: echo_round_trips(p_echo, args.seconds))
        bulk_d, bulk_p = _alternate(args.repeat, lambda: bulk_rate(sink_port), lambda: bulk_rate(p_sink))
    finally:
        proxy.send_signal(signal.SIGINT)  # Ctrl-C: the proxy shuts down cleanly
        proxy.wait(timeout=10)
        parent.send("stop")
        upstreams.join(timeout=10)

    best_rt_d, best_rt_p = min(rt_d, key=statistics.median), min(rt_p, key=statistics.median)
    p50_d, p99_d = _percentile_ms(best_rt_d, 0.5), _percentile_ms(best_rt_d, 0.99)
    p50_p, p99_p = _percentile_ms(best_rt_p, 0.5), _percentile_ms(best_rt_p, 0.99)
    rps_direct, rps_proxied = max(rps_d), max(rps_p)
    bulk_direct, bulk_proxied = max(bulk_d), max(bulk_p)
    throughput_ratio = rps_proxied / rps_direct
    added_p50 = p50_p - p50_d

    print(f"{'measure':<44} {'direct':>12} {'proxied':>12} {'ratio':>7}")
    print(f"{'small HTTP request/response (requests/s)':<44} {rps_direct:>12,.0f} {rps_proxied:>12,.0f} "
          f"{throughput_ratio:>6.0%}")
    print(f"{'echo round trip p50 (ms)':<44} {p50_d:>12.3f} {p50_p:>12.3f} {p50_p / p50_d:>6.2f}x")
    print(f"{'echo round trip p99 (ms)':<44} {p99_d:>12.3f} {p99_p:>12.3f} {p99_p / p99_d:>6.2f}x")
    print(f"{'bulk transfer, 64 MiB one way (MB/s)':<44} {bulk_direct:>12,.0f} {bulk_proxied:>12,.0f} "
          f"{bulk_proxied / bulk_direct:>6.0%}")
    print(f"added latency (p50, both hops): {added_p50:.3f} ms; p99: {p99_p - p99_d:.3f} ms")
    ok_rps, ok_p50 = throughput_ratio >= TARGET_THROUGHPUT, added_p50 < TARGET_ADDED_P50_MS
    print(f"targets: throughput >= {TARGET_THROUGHPUT:.0%} of direct: {'met' if ok_rps else 'MISSED'}; "
          f"added p50 < {TARGET_ADDED_P50_MS} ms: {'met' if ok_p50 else 'MISSED'}")


if __name__ == "__main__":
    main()
