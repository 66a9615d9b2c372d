"""Proxies and the collection of them: Toxiproxy's `proxy.go`, `proxy_collection.go`, `toxic_collection.go`.

Error tree (each carries the HTTP status the API answers with and Toxiproxy's exact message):

    ApiError                 status + message, as Go's `ApiError`
    ├── 400 bad request body / missing required field / invalid stream / invalid toxic type
    ├── 404 proxy not found / toxic not found
    ├── 409 proxy already exists / toxic already exists
    └── 500 anything else Go reports (listen failures: `AddressError` texts)

Every change to toxics is applied to the proxy's chain first and then to each live link; the server
serialises API changes, so a link sees them one at a time and in order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from integrations.clock import Clock
from simulators.toxiproxy._addr import AddressError, bound_address, listen, resolved_string, split_host_port
from simulators.toxiproxy._gojson import Float32
from simulators.toxiproxy._link import Connection, Link, protocol_factory
from simulators.toxiproxy.toxics import Toxic


class ApiError(Exception):
    """An error the API answers with `{"error": message, "status": status}`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_request(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(detail: str) -> ApiError:
    return ApiError(f"missing required field: {detail}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)
DIRECTIONS = ("upstream", "downstream")


class AlreadyStarted(Exception):
    """Go's `ErrProxyAlreadyStarted` (ignored by /reset)."""


@dataclass
class Traffic:
    """Byte counters for `/metrics`, added when a link ends (as Toxiproxy does)."""

    received: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    sent: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def add(self, proxy: Proxy, link: Link) -> None:
        key = (link.direction, proxy.listen, proxy.name, proxy.upstream)
        self.received[key] = self.received.get(key, 0) + link.received
        self.sent[key] = self.sent.get(key, 0) + link.sink.sent


class Proxy:
    """One listening proxy: its address, its upstream, its toxics and its live connections."""

    def __init__(self, name: str, listen: str, upstream: str, *, clock: Clock, rng: random.Random,
                 traffic: Traffic, any_host: bool = False) -> None:
        self.name = name
        self.any_host = any_host
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.chains: dict[str, list[Toxic]] = {d: [] for d in DIRECTIONS}
        self.connections: set[Connection] = set()
        self._clock = clock
        self._rng = rng
        self._traffic = traffic
        self._server: asyncio.Server | None = None

    # JSON ------------------------------------------------------------------------------------------

    def toxic_list(self) -> list[Toxic]:
        return [*self.chains["upstream"], *self.chains["downstream"]]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "Logger": {}, "toxics": [toxic_json(t) for t in self.toxic_list()]}

    # listening -------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            raise AlreadyStarted
        check_listen(self.listen, any_host=self.any_host)
        try:
            sock = await listen(self.listen)
        except AddressError as exc:
            raise ApiError(str(exc), 500) from None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(protocol_factory(self, self._clock, self._rng), sock=sock)
        except OSError as exc:
            sock.close()
            raise ApiError(f"listen tcp {self.listen}: {exc.strerror or exc}", 500) from None
        self.listen = bound_address(sock)
        self.enabled = True

    def stop(self) -> None:
        """Stop listening and drop every connection (their peers see the socket close)."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.abort()

    def accepting(self, conn: Connection) -> bool:
        if not self.enabled:
            return False
        self.connections.add(conn)
        return True

    def connection_finished(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for link in conn.links.values():
            self._traffic.add(self, link)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Go's `Proxy.Update`: a new listen or upstream restarts the proxy (dropping connections)."""
        try:
            resolved = await resolved_string(listen)
        except AddressError as exc:
            raise ApiError(str(exc), 500) from None
        if resolved != self.listen or upstream != self.upstream:
            self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                self.stop()

    # toxics ----------------------------------------------------------------------------------------

    def toxics_snapshot(self) -> dict[str, list[Toxic]]:
        return {d: list(chain) for d, chain in self.chains.items()}

    def find_toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.toxic_list() if t.name == name), None)

    def _live_links(self, direction: str) -> Iterator[Link]:
        for conn in list(self.connections):
            link = conn.links.get(direction)
            if link is not None and not conn.closed:
                yield link

    async def add_toxic(self, toxic: Toxic) -> None:
        self.chains[toxic.direction].append(toxic)
        for link in list(self._live_links(toxic.direction)):
            await link.add_toxic(toxic)

    async def update_toxic(self, toxic: Toxic, attributes: dict[str, int], toxicity: float) -> None:
        toxic.attributes, toxic.toxicity = attributes, toxicity
        for link in list(self._live_links(toxic.direction)):
            await link.update_toxic(toxic)

    async def remove_toxic(self, toxic: Toxic) -> None:
        self.chains[toxic.direction].remove(toxic)
        for link in list(self._live_links(toxic.direction)):
            await link.remove_toxic(toxic)

    async def reset_toxics(self) -> None:
        for direction in DIRECTIONS:
            while self.chains[direction]:
                await self.remove_toxic(self.chains[direction][0])


def toxic_json(toxic: Toxic) -> dict[str, Any]:
    return {"attributes": {name: toxic.attributes.get(name, 0) for name in toxic.kind.attribute_names},
            "name": toxic.name, "type": toxic.kind.name, "stream": toxic.stream,
            "toxicity": Float32(toxic.toxicity)}


def check_listen(address: str, *, any_host: bool) -> None:
    """A proxy listens on loopback only unless the server was started for every interface (`--allow-any-host`,
    `EHRLAB_CONTAINER=1`): its API is unauthenticated, and a client could otherwise open a port to the network
    through it (the lab's one bind rule, `harness.guard.check_bind`, for the proxies the API creates). Host names
    other than localhost are not looked up: they count as remote."""
    if any_host:
        return
    try:
        host, _ = split_host_port(address)
    except AddressError:
        return  # malformed: `listen` reports it with Go's text
    if host in ("", "localhost"):
        return  # an empty host binds 127.0.0.1 here
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ApiError(f"listen tcp {address}: this proxy server listens on loopback only; start it with "
                   "--allow-any-host (or EHRLAB_CONTAINER=1) to listen on other interfaces", 403)


class ProxyCollection:
    """All proxies by name (Toxiproxy's `ProxyCollection`)."""

    def __init__(self, *, clock: Clock, rng: random.Random, any_host: bool = False) -> None:
        self.any_host = any_host
        self.proxies: dict[str, Proxy] = {}
        self.traffic = Traffic()
        self._clock = clock
        self._rng = rng

    def new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, clock=self._clock, rng=self._rng, traffic=self.traffic,
                     any_host=self.any_host)

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    async def add(self, proxy: Proxy, start: bool) -> None:
        if proxy.name in self.proxies:
            raise ApiError(*PROXY_EXISTS)
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy

    async def add_or_replace(self, proxy: Proxy, start: bool) -> Proxy:
        """Keep an existing proxy with the same resolved listen and upstream (and its toxics)."""
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            try:
                resolved = await resolved_string(proxy.listen)
            except AddressError as exc:
                raise ApiError(str(exc), 500) from None
            if existing.listen == resolved and existing.upstream == proxy.upstream:
                return existing
            existing.stop()
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    def remove(self, name: str) -> None:
        self.get(name).stop()
        del self.proxies[name]

    def stop_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
