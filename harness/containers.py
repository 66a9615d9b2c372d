"""Real Toxiproxy and Redis in Docker containers (testcontainers), where a Docker engine answers.

    with toxiproxy_container() as url:     # http://127.0.0.1:P, for TOXIPROXY_URL / Lab(toxiproxy_url=...)
        ...
    with redis_container() as url:         # redis://HOST:P/0, for RedisStore.connect(url, queue)
        ...

Where no engine answers (these machines), both raise `DockerUnavailable` before touching anything,
with the reason (`docker_unavailable_reason()` gives it without raising, for `pytest.skip`).

The images are the ones docker-compose.yml runs (tests/compose checks they agree). The Toxiproxy
container shares the host's network namespace by default (`host_network=True`, Linux engines): real
mode serves its simulators on the host's loopback and reaches the proxies Toxiproxy creates on
`127.0.0.1:0`, so each side must see the other's loopback, exactly as with the embedded proxy. Its API
then listens on a free port picked here, on 127.0.0.1 only. With `host_network=False` the API is
published on an ephemeral host port; proxies must then name upstreams the container can reach.

testcontainers and the Docker SDK are dev dependencies, imported only inside these functions, so the
module imports without them.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from harness.errors import HarnessError

TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.9.0"
REDIS_IMAGE = "redis:7.4.1-alpine"
DEFAULT_SOCKET = "/var/run/docker.sock"
STARTUP_TIMEOUT_S = 60.0


class DockerUnavailable(HarnessError):
    """No Docker engine to start containers on; `reason` says why (missing package, socket, or no answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _default_ping() -> None:
    docker = importlib.import_module("docker")
    client = docker.from_env(timeout=5)
    try:
        client.ping()
    finally:
        client.close()


def docker_unavailable_reason(environ: Mapping[str, str] | None = None,
                              path_exists: Callable[[str], bool] = os.path.exists,
                              ping: Callable[[], None] | None = None) -> str | None:
    """Why containers cannot be started here, or None when a Docker engine answers a ping.

    Cheap checks first: the packages, then `DOCKER_HOST` or the default socket, then one ping."""
    env = os.environ if environ is None else environ
    for module in ("testcontainers", "docker"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"the {module!r} package is not installed (pip install -e '.[dev]')"
    host = env.get("DOCKER_HOST", "").strip()
    if not host and not path_exists(DEFAULT_SOCKET):
        return f"no Docker engine: DOCKER_HOST is unset and {DEFAULT_SOCKET} does not exist"
    if host.startswith("unix://") and not path_exists(host.removeprefix("unix://")):
        return f"no Docker engine: DOCKER_HOST={host} names a socket that does not exist"
    try:
        (ping or _default_ping)()
    except Exception as exc:  # the Docker SDK raises DockerException, requests' and OS errors alike
        return f"no Docker engine answered at {host or 'unix://' + DEFAULT_SOCKET}: {type(exc).__name__}: {exc}"
    return None


def require_docker(environ: Mapping[str, str] | None = None) -> None:
    """Raise `DockerUnavailable` unless a Docker engine answers."""
    reason = docker_unavailable_reason(environ)
    if reason is not None:
        raise DockerUnavailable(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(ready: Callable[[], bool], what: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Poll `ready` on the wall clock (a container starts in real time, whatever the lab's clock)."""
    deadline = time.monotonic() + timeout_s  # real-time: waiting for a container process, outside any scenario
    while time.monotonic() < deadline:  # real-time: as above
        if ready():
            return
        time.sleep(0.2)  # real-time: as above
    raise DockerUnavailable(f"{what} did not become ready within {timeout_s:.0f} s")


def _toxiproxy_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def toxiproxy_container(image: str = TOXIPROXY_IMAGE, *, host_network: bool = True) -> Iterator[str]:
    """Start Shopify's Toxiproxy; yield its API URL; stop and remove the container on exit."""
    require_docker()
    container_cls: Any = importlib.import_module("testcontainers.core.container").DockerContainer
    if host_network:
        port = _free_port()
        container = container_cls(image).with_command(f"-host=127.0.0.1 -port={port}").with_kwargs(
            network_mode="host")
    else:
        container = container_cls(image).with_command("-host=0.0.0.0").with_exposed_ports(8474)
    with container:
        url = (f"http://127.0.0.1:{port}" if host_network else
               f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8474)}")
        _wait_until(lambda: _toxiproxy_answers(url), f"Toxiproxy ({image})")
        yield url


@contextmanager
def redis_container(image: str = REDIS_IMAGE) -> Iterator[str]:
    """Start Redis (append-only file on, as in docker-compose.yml); yield `redis://host:port/0`."""
    require_docker()
    container_cls: Any = importlib.import_module("testcontainers.core.container").DockerContainer
    redis: Any = importlib.import_module("redis")
    container = container_cls(image).with_command("redis-server --appendonly yes").with_exposed_ports(6379)
    with container:
        url = f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"

        def answers() -> bool:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        _wait_until(answers, f"Redis ({image})")
        yield url
