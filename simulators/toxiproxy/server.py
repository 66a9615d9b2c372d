"""Run the Toxiproxy-compatible server inside the caller's event loop: `serve_toxiproxy(...)`.

The API and every proxy bind to loopback unless a host is given explicitly. A config (Toxiproxy's
`-config`: a JSON array in the `/populate` format) is applied before the API starts serving; unlike
Toxiproxy, which logs a bad config and serves anyway, a bad config is an error (`ConfigError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from integrations.clock import Clock
from simulators.toxiproxy._addr import AddressError, format_host_port, listen
from simulators.toxiproxy._gojson import encode
from simulators.toxiproxy._http import ApiServer
from simulators.toxiproxy.api import Api
from simulators.toxiproxy.proxy import ProxyCollection

Config = str | os.PathLike[str] | Sequence[dict[str, Any]]


class ConfigError(ValueError):
    """A config that cannot be loaded or applied; `str()` is one line naming the problem."""


def _config_body(config: Config) -> tuple[bytes, str]:
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    return encode(list(config)).encode(), "config"


class ToxiproxyServer:
    """The proxy collection and its HTTP API, started and stopped as one."""

    def __init__(self, *, clock: Clock, rng: random.Random, proxy_metrics: bool = False,
                 any_host: bool = False) -> None:
        self.collection = ProxyCollection(clock=clock, rng=rng, any_host=any_host)
        self.api = Api(self.collection, metrics=proxy_metrics)
        self._http = ApiServer(self.api, clock, rng)
        self._clock = clock
        self.url: str | None = None

    async def populate(self, config: Config) -> None:
        """Apply a config, as `POST /populate` would; `ConfigError` if it is refused."""
        body, where = _config_body(config)
        async with self.api.lock:
            _, error = await self.api.apply_populate(body)
        if error is not None:
            raise ConfigError(f"{where}: {error.message}")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        try:
            sock = await listen(format_host_port(host, port) if host else f":{port}")
        except AddressError as exc:
            raise OSError(str(exc)) from None
        await self._http.start(sock)
        bound_host, bound_port = sock.getsockname()[:2]
        self.url = f"http://{format_host_port(str(bound_host), int(bound_port))}"
        return self.url

    async def close(self) -> None:
        """Stop the API and every proxy; drop every connection; wait for every task to end."""
        await self._http.close()
        connections = [conn for proxy in self.collection.proxies.values() for conn in proxy.connections]
        self.collection.stop_all()
        for conn in connections:
            conn.abort()
        tasks = {task for conn in connections for task in conn.tasks}
        if tasks:
            await asyncio.wait(tasks)
        for _ in range(2):  # transports close their sockets in callbacks the loop runs next
            await self._clock.sleep(0)


@contextlib.asynccontextmanager
async def serve_toxiproxy(host: str = "127.0.0.1", port: int = 0, config: Config | None = None, *,
                          clock: Clock | None = None, rng: random.Random | None = None,
                          proxy_metrics: bool = False, any_host: bool = False) -> AsyncIterator[str]:
    """Serve the Toxiproxy API on `host:port` (port 0: ephemeral) and yield its base URL. Proxies the API creates
    listen on loopback only unless `any_host` (`simulators.toxiproxy.proxy.check_listen`).

    `clock` defaults to the real clock and `rng` (jitter, toxicity, slicing) to `random.Random(0)`;
    the CLI passes a printed, reproducible seed. `config` is a path to a JSON file or the parsed
    list, in the `/populate` format. On exit every proxy, connection and task is gone.
    """
    if clock is None:
        from harness.clock import RealClock

        clock = RealClock()
    server = ToxiproxyServer(clock=clock, rng=rng if rng is not None else random.Random(0),
                             proxy_metrics=proxy_metrics, any_host=any_host)
    try:
        if config is not None:
            await server.populate(config)
        yield await server.start(host, port)
    finally:
        await server.close()
