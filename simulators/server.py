"""Serve a simulator over real loopback HTTP with uvicorn, inside the caller's event loop.

`serve(app)` binds a 127.0.0.1 socket itself (port 0: the OS picks a free port, so parallel runs never
collide), runs `uvicorn.Server` on it as a task of the *current* loop, yields the base URL and shuts
the server down on exit. Lifespan off, no access log, uvicorn's loggers at WARNING, no `Server:`
header, no logging configuration of the process (`log_config=None`).

Signals: `uvicorn.Server.serve()` wraps itself in `capture_signals()`, which (in the main thread)
replaces the SIGINT/SIGTERM handlers with its own "please exit" flag and re-raises the signals only
after a graceful shutdown. Embedded in a test run or the lab CLI, that would swallow Ctrl+C until the
server happened to stop. `_EmbeddedServer` overrides `capture_signals` with a no-op: signals reach
whoever owns the process (pytest, the CLI), and the server stops when `serve()`'s block exits.

Dropped connections: the served app is wrapped in `_DropConnection`, which realizes the chaos
layer's `ConnectionDropped`. In uvicorn's h11 implementation (pinned with `http="h11"`), the `send`
callable handed to the app is the bound method `RequestResponseCycle.send`, whose object holds the
connection's `asyncio.Transport` (`send.__self__.transport`). The shim calls `transport.abort()`:
the socket is closed at once, nothing is written, so the client gets EOF before any response bytes
(httpx: `RemoteProtocolError: Server disconnected without sending a response.`, or `ReadError` if
the kernel resets). The shim then waits for `http.disconnect` from `receive()`; that message arrives
once uvicorn's `connection_lost` has marked the cycle disconnected, so uvicorn neither logs "ASGI
callable returned without starting response" nor tries to write a 500 on the dead connection.
If uvicorn ever stops exposing the transport this way, the shim raises a `RuntimeError` naming the
problem (and the real-network test fails) rather than silently answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.errors import ConnectionDropped, ResponseTruncated

#: How long a shutdown waits for in-flight requests before cancelling them.
GRACEFUL_SHUTDOWN_S = 5


class _DropConnection:
    """ASGI shim for uvicorn: `ConnectionDropped` from the app aborts the client's TCP connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ConnectionDropped as exc:
            if scope["type"] != "http":
                raise
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if not isinstance(transport, asyncio.Transport):
                raise RuntimeError("cannot drop the connection: uvicorn's send() exposes no transport") from None
            if isinstance(exc, ResponseTruncated):
                transport.close()  # flush the bytes already written (the partial body), then FIN
            else:
                transport.abort()
            while (await receive())["type"] != "http.disconnect":
                pass


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.ready.done():
            self.ready.set_result(None)


def _loopback_socket(host: str, port: int, *, any_host: bool = False) -> socket.socket:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"serve() binds a loopback IP address only, not {host!r}") from None
    if not (address.is_loopback or (any_host and address.is_unspecified)):
        allowed = "a loopback IP address, or 0.0.0.0 / :: when allowed" if any_host else "a loopback IP address only"
        raise ValueError(f"serve() binds {allowed}, not {host!r}")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP; without it h11's separate header and body writes meet Nagle's algorithm and
    # the client's delayed ACK, and every keep-alive response stalls ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, any_host: bool = False
                ) -> AsyncIterator[str]:
    """Serve `app` on `host:port` (loopback only; port 0 = ephemeral) and yield its base URL.

    `any_host=True` also accepts the unspecified address (0.0.0.0 or ::): every interface, which a
    container needs so that its neighbours on the container network reach it. Only callers given an
    explicit opt-in (`--allow-any-host`, `EHRLAB_CONTAINER=1`) pass it; the yielded URL then names
    loopback, where the server is also reachable."""
    sock = _loopback_socket(host, port, any_host=any_host)
    try:
        config = uvicorn.Config(
            _DropConnection(app), interface="asgi3", http="h11", ws="none", lifespan="off",
            log_config=None, log_level="warning", access_log=False, proxy_headers=False,
            server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        server = _EmbeddedServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn {host}:{port}")
        try:
            await asyncio.wait({serving, server.ready}, return_when=asyncio.FIRST_COMPLETED)
            if not server.ready.done():
                await serving  # startup failed: raise its error
                raise RuntimeError("uvicorn exited before it started serving")
            bound_host, bound_port = sock.getsockname()[:2]
            if ipaddress.ip_address(bound_host).is_unspecified:
                bound_host = "127.0.0.1" if ipaddress.ip_address(bound_host).version == 4 else "::1"
            netloc = f"[{bound_host}]" if ":" in bound_host else bound_host
            yield f"http://{netloc}:{bound_port}"
        finally:
            server.should_exit = True  # also when cancelled during startup: uvicorn then shuts down at once
            await serving
    finally:
        sock.close()
