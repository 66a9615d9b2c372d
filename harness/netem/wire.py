"""What an HTTP/1.1 exchange looks like on the wire, for the emulator's byte-counting toxics.

Toxiproxy sees bytes, not requests: `bandwidth` and `slicer` cost time per byte and `limit_data`
cuts the stream after N bytes. The emulator therefore needs the size of a request and the bytes of
a response as a socket would carry them (`request_size`, `response_wire`), and, for a response cut
short, the exact error httpx raises when it reads those bytes and then meets the close
(`read_cut_response`). The last one runs h11, the parser httpx itself uses (through httpcore), over
the cut bytes, and applies httpcore's one special case ("Server disconnected without sending a
response." when the close comes before a complete status line and headers), so messages match a
real exchange without copying them here.

Sizes are those of `serve()`'s uvicorn (h11) to within a few bytes: the status line, the headers
the app sent plus uvicorn's `date` header, the body. The slicer's cut points follow Toxiproxy's
`SlicerToxic.chunk` (reference toxiproxy.md §2, "slicer"), drawing from the injected RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from http import HTTPStatus

import h11
import httpx

from simulators.transport import DISCONNECTED  # httpcore's words for a close before a complete response head

#: uvicorn adds `date: <29 characters>`; the value only matters for its length.
_DATE_HEADER = (b"date", b"Thu, 01 Jan 1970 00:00:00 GMT")


def request_size(request: httpx.Request, body: bytes) -> int:
    """Bytes of `request` on the wire: request line, headers, blank line, body."""
    size = len(request.method) + 1 + len(request.url.raw_path) + len(b" HTTP/1.1\r\n")
    size += sum(len(name) + 2 + len(value) + 2 for name, value in request.headers.raw)
    return size + 2 + len(body)


def response_wire(response: httpx.Response, body: bytes) -> bytes:
    """`response` as uvicorn would write it: status line, headers (plus `date`), blank line, body."""
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = ""
    headers = list(response.headers.raw)
    if not any(name.lower() == b"date" for name, _ in headers):
        headers.append(_DATE_HEADER)
    head = f"HTTP/1.1 {response.status_code} {reason}\r\n".encode("latin-1")
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


@dataclass(frozen=True, slots=True)
class CutResponse:
    """What a client reads from a response cut after some bytes and then closed."""

    status: int | None  # None: the head never completed, so there is no response at all
    headers: list[tuple[bytes, bytes]]
    body: bytes  # the part of the body that arrived
    error: str | None  # the RemoteProtocolError message; None if the response was complete anyway


def read_cut_response(method: str, data: bytes) -> CutResponse:
    """Parse `data` (a response to `method`) followed by EOF, the way httpcore + h11 do."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "netem")]))
    conn.send(h11.EndOfMessage())
    if data:  # h11 reads an empty receive_data as the EOF itself
        conn.receive_data(data)
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    body = bytearray()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return CutResponse(status, headers, bytes(body), str(exc))
        if event is h11.NEED_DATA:
            if conn.their_state == h11.SEND_RESPONSE:
                return CutResponse(None, [], b"", DISCONNECTED)
            if eof:  # pragma: no cover  (h11 raises or ends the message at EOF)
                return CutResponse(status, headers, bytes(body), DISCONNECTED)
            conn.receive_data(b"")
            eof = True
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = [(bytes(name), bytes(value)) for name, value in event.headers.raw_items()]
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return CutResponse(status, headers, bytes(body), None)


def slice_count(size: int, average_size: int, size_variation: int, rng: random.Random) -> int:
    """How many pieces Toxiproxy's slicer cuts a `size`-byte chunk into (`SlicerToxic.chunk`)."""
    if average_size <= 0:
        return max(1, size)
    pieces = 0
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        if (end - start) - average_size <= size_variation:
            pieces += 1
            continue
        mid = start + (end - start) // 2
        if size_variation > 0:
            mid += rng.randrange(2 * size_variation) - size_variation
        pending.append((mid, end))
        pending.append((start, mid))
    return pieces
