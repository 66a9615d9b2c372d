"""The API's HTTP/1.1 server: h11 for the protocol, one asyncio task per connection, Go's timeouts.

Why h11 on a bare asyncio protocol rather than Starlette under uvicorn: the API must look like Go's
`net/http` + gorilla/mux to a client, and most of what that takes lives below an ASGI app. Toxiproxy
closes a connection that takes more than 15 s to send a request (`ReadTimeout`) or idles 60 s between
requests (`IdleTimeout`), gives up on a client that does not read a response in 30 s (`WriteTimeout`),
answers a malformed request with a bare `400 Bad Request` and `Connection: close`, and sends no
`Server` header; Starlette's router would add trailing-slash redirects and its own 404/405 bodies,
and uvicorn has no read timeout and installs signal handlers. h11 (already installed, under httpx and
uvicorn) does the HTTP parsing and framing; this module only drives it. Every connection task is
created synchronously on accept and tracked, so shutting down cancels all of them: no task or
socket outlives the server.

Deliberate limit: a request body over `MAX_BODY` (1 MiB) gets 413 `request body too large` (Go would
read it all); every API body is a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import socket
from datetime import UTC
from email.utils import format_datetime
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

import h11

from integrations.clock import Clock
from simulators.toxiproxy.api import Api, Response, text_error

# Toxiproxy's http.Server timeouts: ../shared/reference/toxiproxy.md §1 ("ReadTimeout is 15s, its
# WriteTimeout 30s, and its IdleTimeout 60s").
READ_TIMEOUT_S = 15.0
WRITE_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 60.0
MAX_BODY = 1024 * 1024
MAX_DRAIN = 64 * 1024 * 1024  # after refusing a body, read at most this much more of it ...
DRAIN_TIMEOUT_S = 2.0  # ... for at most this long
MAX_HEADER = 1024 * 1024  # Go's DefaultMaxHeaderBytes
_READ_CHUNK = 65536


class _Closed(Exception):
    """The client went away."""


class RequestIds:
    """`X-Toxiproxy-Request-Id` values in xid's format (20 base32hex characters), from Clock and rng."""

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self._clock = clock
        self._machine = rng.getrandbits(24).to_bytes(3, "big")
        self._pid = rng.getrandbits(16).to_bytes(2, "big")
        self._counter = rng.getrandbits(24)

    def next(self) -> str:
        self._counter = (self._counter + 1) & 0xFFFFFF
        seconds = int(self._clock.now().timestamp()) & 0xFFFFFFFF
        raw = seconds.to_bytes(4, "big") + self._machine + self._pid + self._counter.to_bytes(3, "big")
        return base64.b32hexencode(raw).decode().lower().rstrip("=")


class _Connection(asyncio.Protocol):
    """Bytes in and out of one API connection, for the task that runs it."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        self.write_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.task = self.server.spawn(self)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_CHUNK and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = self.lost = True
        self._wake()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read(self) -> bytes:
        while not self.buffer and not self.eof:
            await self._wait()
        data = bytes(self.buffer)
        self.buffer.clear()
        if self.transport is not None and not self.lost:
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        if self.lost or self.transport is None:
            raise _Closed
        self.transport.write(data)
        while self.write_paused and not self.lost:
            await self._wait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ApiServer:
    """Serves `Api` over HTTP/1.1 on a listening socket."""

    def __init__(self, api: Api, clock: Clock, rng: random.Random) -> None:
        self.api = api
        self.clock = clock
        self.request_ids = RequestIds(clock, rng)
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._closing = False

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock)

    def spawn(self, conn: _Connection) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._serve(conn), name="toxiproxy api connection")
        self._connections[conn] = task
        task.add_done_callback(lambda _: self._connections.pop(conn, None))
        return task

    async def close(self) -> None:
        """Stop listening, drop every connection and wait for their tasks."""
        self._closing = True
        if self._server is not None:
            self._server.close()
            self._server = None
        while self._connections:
            for conn, task in list(self._connections.items()):
                if conn.transport is not None:
                    conn.transport.abort()
                task.cancel()
            await asyncio.wait(set(self._connections.values()))

    async def _serve(self, conn: _Connection) -> None:
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
        first = True
        try:
            while not self._closing:
                try:
                    async with self.clock.timeout(READ_TIMEOUT_S if first else IDLE_TIMEOUT_S):
                        event = await self._next_event(http, conn)
                    if not isinstance(event, h11.Request):
                        return
                    async with self.clock.timeout(READ_TIMEOUT_S):
                        body = await self._read_body(http, conn, event)
                except h11.RemoteProtocolError as exc:
                    await self._send_bare(http, conn, exc.error_status_hint)
                    return
                except TimeoutError:
                    return
                first = False
                if body is None:
                    await self._send(http, conn, text_error(
                        '{"error":"request body too large","status":413}', 413), None, close=True)
                    await self._discard_rest(conn)
                    return
                await self._respond(http, conn, event, body)
                if http.our_state is h11.MUST_CLOSE or http.their_state is not h11.DONE:
                    return
                http.start_next_cycle()
        except (_Closed, h11.LocalProtocolError, TimeoutError):
            pass
        finally:
            conn.close()

    async def _discard_rest(self, conn: _Connection) -> None:
        """Half-close, then read what the client is still sending, so it gets the answer, not a reset."""
        if conn.transport is not None and conn.transport.can_write_eof():
            conn.transport.write_eof()
        discarded = 0
        with contextlib.suppress(TimeoutError):
            async with self.clock.timeout(DRAIN_TIMEOUT_S):
                while discarded < MAX_DRAIN and (data := await conn.read()):
                    discarded += len(data)

    async def _next_event(self, http: h11.Connection, conn: _Connection) -> object:
        while True:
            event = http.next_event()
            if event is not h11.NEED_DATA:
                return event
            http.receive_data(await conn.read())

    async def _read_body(self, http: h11.Connection, conn: _Connection, request: h11.Request) -> bytes | None:
        if http.they_are_waiting_for_100_continue:
            await conn.write(http.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while True:
            event = await self._next_event(http, conn)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    return None
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:
                raise _Closed

    async def _respond(self, http: h11.Connection, conn: _Connection, request: h11.Request, body: bytes) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        target = request.target.decode("latin-1")
        # origin-form ("/a//b?q") is a path as sent, as Go reads a request URI; absolute-form has one inside
        path = unquote(target.split("?", 1)[0] if target.startswith("/") else urlsplit(target).path)
        response, matched = await self.api.handle(request.method.decode("latin-1"), path,
                                                  headers.get("user-agent", ""), body)
        await self._send(http, conn, response, self.request_ids.next() if matched else None)

    async def _send(self, http: h11.Connection, conn: _Connection, response: Response, request_id: str | None,
                    *, close: bool = False) -> None:
        headers = list(response.headers)
        if request_id is not None:
            headers.append(("X-Toxiproxy-Request-Id", request_id))
        headers.append(("Date", format_datetime(self.clock.now().astimezone(UTC), usegmt=True)))
        if response.status != 204:
            headers.append(("Content-Length", str(len(response.body))))
        if close:
            headers.append(("Connection", "close"))
        async with self.clock.timeout(WRITE_TIMEOUT_S):
            await conn.write(http.send(h11.Response(status_code=response.status, headers=headers,
                                                    reason=HTTPStatus(response.status).phrase)))
            if response.body:
                await conn.write(http.send(h11.Data(data=response.body)))
            await conn.write(http.send(h11.EndOfMessage()))

    async def _send_bare(self, http: h11.Connection, conn: _Connection, status: int) -> None:
        """Go's answer to a request it cannot parse: `400 Bad Request` as plain text, then close."""
        if http.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        phrase = HTTPStatus(status).phrase
        response = Response(status, f"{status} {phrase}".encode(), [("Content-Type", "text/plain; charset=utf-8")])
        with contextlib.suppress(h11.LocalProtocolError, _Closed, TimeoutError):
            await self._send(http, conn, response, None, close=True)
