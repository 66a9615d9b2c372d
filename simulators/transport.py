"""In-process transport: an httpx client talks to a simulator's ASGI app with no sockets and no threads.

`VirtualTransport` is `httpx.ASGITransport` plus one translation at its boundary: the chaos layer's
`ConnectionDropped` becomes `httpx.RemoteProtocolError("Server disconnected without sending a
response.")`, exactly what httpx raises when a real server closes the connection without answering
(`simulators.server` does that over TCP), and `ResponseTruncated` becomes the error httpx raises for a
body cut short. Code under test sees the same error in both modes.

Other exceptions escaping the app are re-raised as they are (a simulator bug should fail loudly).
"""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from simulators.errors import ConnectionDropped, ResponseTruncated

DISCONNECTED = "Server disconnected without sending a response."


class VirtualTransport(httpx.AsyncBaseTransport):
    """Serve requests by calling `app` in the current event loop (virtual time friendly)."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 123), root_path: str = "") -> None:
        self._asgi = httpx.ASGITransport(app=app, client=client, root_path=root_path)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ResponseTruncated as exc:
            # the message httpx gives when a real server closes mid-body
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {exc.received} bytes, expected {exc.expected})", request=request) from exc
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(DISCONNECTED, request=request) from exc

    async def aclose(self) -> None:
        await self._asgi.aclose()
