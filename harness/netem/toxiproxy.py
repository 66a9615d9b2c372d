"""Drive a Toxiproxy server (the embedded one or a real Toxiproxy) over its HTTP API (real mode).

Plain httpx, not the `toxiproxy-python` client: that client is synchronous (`requests`, which would
block the lab's event loop while the scenario runs), keeps its endpoint in class-level global state
(`APIConsumer.host/port`, so two labs in one process would talk to one server), sets no timeout,
discards `add_toxic`'s answer and returns any status it does not know (a 500 included) as success
(`../shared/reference/toxiproxy.md`, "The Python client"). The API needs five calls
(`POST /proxies`, `DELETE /proxies/{p}`, `POST /proxies/{p}/toxics`, `DELETE .../toxics/{t}`,
`PATCH /proxies/{p}` with `{"enabled": bool}`), each checked for its documented status (201, 204,
200, 204, 200; reference §1, "Endpoints"). The proxies it creates stay scriptable with
toxiproxy-python or the Toxiproxy CLI during a game day.

Time scale: a Toxiproxy sleeps on the wall clock. Under `RealClock(scale)` the lab's durations are
scenario seconds, so `ToxiproxyProxy` sends each toxic `Toxic.faster(scale)`: a 2 s latency in a
scenario run at 30x is a 67 ms toxic, and costs the integration 2 scenario seconds, as in virtual
mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from harness.netem.toxics import NetworkControlError, Toxic

#: How long one API call may take on the wall clock.
API_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """A proxy as the API reports it; `listen` is the bound address once it listens (`127.0.0.1:P`)."""

    name: str
    listen: str
    upstream: str
    enabled: bool


class ToxiproxyApi:
    """A client for one Toxiproxy server's HTTP API."""

    def __init__(self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # real-time: the API is served on the wall clock; a hung server must not hang the lab forever.
        # No keep-alive: calls are minutes apart, and a server closing an idle connection just as the
        # next call reuses it (Toxiproxy's IdleTimeout, 60 s) would fail a fault switch for nothing.
        self._client = httpx.AsyncClient(base_url=self.base_url, transport=transport, trust_env=False,
                                         timeout=API_TIMEOUT_S, limits=httpx.Limits(max_keepalive_connections=0))

    def __repr__(self) -> str:
        return f"ToxiproxyApi({self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def version(self) -> str:
        payload = await self._call("GET", "/version", expect=200)
        version = payload.get("version")
        return version if isinstance(version, str) else ""

    async def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> ProxyInfo:
        """Create a proxy, replacing a stale one of the same name (a previous run that did not clean up)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        try:
            payload = await self._call("POST", "/proxies", json_body=body, expect=201)
        except _Status as exc:
            if exc.status != 409:
                raise
            await self.delete_proxy(name)
            payload = await self._call("POST", "/proxies", json_body=body, expect=201)
        return _proxy_info(payload, self.base_url)

    async def delete_proxy(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}", expect=204)

    async def add_toxic(self, proxy: str, toxic: Toxic) -> None:
        await self._call("POST", f"/proxies/{proxy}/toxics", json_body=toxic.json(), expect=200)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{name}", expect=204)

    async def set_enabled(self, proxy: str, enabled: bool) -> None:
        await self._call("PATCH", f"/proxies/{proxy}", json_body={"enabled": enabled}, expect=200)

    def proxy(self, info: ProxyInfo, *, scale: float = 1.0) -> ToxiproxyProxy:
        return ToxiproxyProxy(self, info, scale=scale)

    async def _call(self, method: str, path: str, *, expect: int,
                    json_body: dict[str, object] | None = None) -> dict[str, object]:
        try:
            response = await self._client.request(method, path, json=json_body)
        except httpx.HTTPError as exc:
            raise NetworkControlError(f"Toxiproxy at {self.base_url}: {method} {path} failed "
                                      f"({type(exc).__name__})") from None
        if response.status_code != expect:
            raise _Status(method, path, response.status_code, _error_text(response.content), self.base_url)
        if not response.content.strip():
            return {}
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise NetworkControlError(f"Toxiproxy at {self.base_url}: {method} {path} answered "
                                      f"{response.status_code} with a body that is not JSON") from None
        return payload if isinstance(payload, dict) else {}


class ToxiproxyProxy:
    """One proxy on a Toxiproxy server, as the lab's `NetworkControl` for one vendor."""

    def __init__(self, api: ToxiproxyApi, info: ProxyInfo, *, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.api = api
        self.info = info
        self.scale = scale

    def __repr__(self) -> str:
        return f"ToxiproxyProxy({self.info.name!r}, listen={self.info.listen!r})"

    @property
    def url(self) -> str:
        """The base URL clients use to go through the proxy."""
        host, _, port = self.info.listen.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):  # listening on every interface: reach it on loopback
            host = "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def add_toxic(self, toxic: Toxic) -> None:
        await self.api.add_toxic(self.info.name, toxic.faster(self.scale))

    async def remove_toxic(self, name: str) -> None:
        await self.api.remove_toxic(self.info.name, name)

    async def set_enabled(self, enabled: bool) -> None:
        await self.api.set_enabled(self.info.name, enabled)

    async def delete(self) -> None:
        await self.api.delete_proxy(self.info.name)


class _Status(NetworkControlError):
    """The API answered an unexpected status."""

    def __init__(self, method: str, path: str, status: int, text: str, base_url: str) -> None:
        super().__init__(f"Toxiproxy at {base_url}: {method} {path} answered HTTP {status}" + (
            f" ({text})" if text else ""))
        self.status = status


def _error_text(content: bytes) -> str:
    """The `error` of Toxiproxy's `{"error": ..., "status": ...}` body (sent as text/plain), short."""
    try:
        payload = json.loads(content)
    except ValueError:
        return content[:120].decode("utf-8", "replace").strip()
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])[:200]
    return ""


def _proxy_info(payload: dict[str, object], base_url: str) -> ProxyInfo:
    name, listen, upstream = payload.get("name"), payload.get("listen"), payload.get("upstream")
    if not isinstance(name, str) or not isinstance(listen, str) or not isinstance(upstream, str):
        raise NetworkControlError(f"Toxiproxy at {base_url}: POST /proxies answered without name/listen/upstream")
    return ProxyInfo(name=name, listen=listen, upstream=upstream, enabled=payload.get("enabled") is not False)
