"""Response-body faults: a wrapper around an ASGI `send` that damages or slows the app's response.

`BodyFaultSend` buffers the app's response (start message and every body chunk) and, once the body
is complete, sends it on damaged as its faults say:

- `invalid-json`: the body becomes a prefix of itself (`keep_fraction` of its bytes, at least one
  byte cut) with a matching Content-Length, so the HTTP exchange is sound but the JSON does not parse;
- `truncated`: the response start keeps (or gains) the full Content-Length, the prefix is sent with
  `more_body: True`, then `ResponseTruncated` is raised. The serving layer closes the connection
  (`simulators.server` over TCP; `simulators.transport.VirtualTransport` in process), so the client
  sees the body end before its Content-Length: httpx raises `RemoteProtocolError` in both modes;
- `slow-body`: the (possibly damaged) body goes out in `chunks` pieces, `duration_ms / chunks`
  apart on the injected clock (virtual time in CI, real time on game days).

An empty body is passed through untouched (there is nothing to cut), and the fault is not counted.
`on_applied(kind)` is called once per fault actually applied, for the counters and the journal.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Send

from integrations.clock import Clock
from simulators.admin.faults import MalformedBody, SlowBody
from simulators.errors import ResponseTruncated


def cut(body: bytes, keep_fraction: float) -> bytes:
    """The prefix of `body` that `keep_fraction` keeps; always at least one byte shorter."""
    return body[:min(int(len(body) * keep_fraction), len(body) - 1)]


class BodyFaultSend:
    """An ASGI `send` that applies `malformed` and `slow` to the response it is given."""

    def __init__(self, send: Send, clock: Clock, *, malformed: MalformedBody | None, slow: SlowBody | None,
                 on_applied: Callable[[str], None]) -> None:
        self._send = send
        self._clock = clock
        self._malformed = malformed
        self._slow = slow
        self._on_applied = on_applied
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._done = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if self._done or kind not in ("http.response.start", "http.response.body"):
            await self._send(message)
            return
        if kind == "http.response.start":
            self._start = message
            return
        self._chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            self._done = True
            await self._finish(b"".join(self._chunks))

    async def _finish(self, body: bytes) -> None:
        start = self._start
        if start is None:  # pragma: no cover - the ASGI spec forbids a body before the start
            raise RuntimeError("response body sent before http.response.start")
        if not body:
            await self._send(start)
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers = MutableHeaders(scope=start)  # edits start["headers"] in place
        truncated_from: int | None = None
        if self._malformed is not None:
            self._on_applied(self._malformed.kind)
            kept = cut(body, self._malformed.keep_fraction)
            if self._malformed.mode == "truncated":
                headers["content-length"] = str(len(body))
                truncated_from = len(body)
            else:
                headers["content-length"] = str(len(kept))
            body = kept
        await self._send(start)
        await self._send_body(body, final=truncated_from is None)
        if truncated_from is not None:
            raise ResponseTruncated(received=len(body), expected=truncated_from)

    async def _send_body(self, body: bytes, *, final: bool) -> None:
        slow = self._slow
        if slow is None or (slow.chunks == 1 and slow.duration_ms == 0):
            await self._send({"type": "http.response.body", "body": body, "more_body": not final})
            return
        self._on_applied(slow.kind)
        pieces = max(1, min(slow.chunks, len(body)))
        size = -(-len(body) // pieces)  # ceiling division
        pause = slow.duration_ms / 1000.0 / pieces
        for index in range(pieces):
            await self._clock.sleep(pause)
            last = index == pieces - 1
            await self._send({"type": "http.response.body", "body": body[index * size:(index + 1) * size],
                              "more_body": not (last and final)})
