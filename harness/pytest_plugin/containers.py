"""The plugin's testcontainers mode (`--ehrlab-containers`, or `EHRLAB_CONTAINERS=1`): where a Docker engine
answers, `ehrlab_toxiproxy` is a real Toxiproxy container (Shopify's image) instead of the embedded server,
and `ehrlab_redis_url` a real Redis container; where none does, the tests that asked for them are skipped
with the reason (`harness.containers.DockerUnavailable`). Without the mode, `ehrlab_redis_url` is
`REDIS_URL` when set, else a skip naming both ways to get one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CONTAINERS_ENV = "EHRLAB_CONTAINERS"


def containers_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("--ehrlab-containers")) or os.environ.get(CONTAINERS_ENV, "").strip() == "1"


@contextmanager
def toxiproxy_container_url(config: pytest.Config) -> Iterator[str | None]:
    """Yield a container's Toxiproxy URL in containers mode (skipping without Docker), else None."""
    if not containers_mode(config):
        yield None
        return
    from harness.containers import DockerUnavailable, toxiproxy_container

    try:
        with toxiproxy_container() as url:
            yield url
    except DockerUnavailable as exc:
        pytest.skip(f"ehrlab containers mode: {exc}")


@pytest.fixture
def ehrlab_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis server's URL for the job queue's `RedisStore`: a container in containers mode, else `REDIS_URL`."""
    if containers_mode(request.config):
        from harness.containers import DockerUnavailable, redis_container

        try:
            with redis_container() as url:
                yield url
        except DockerUnavailable as exc:
            pytest.skip(f"ehrlab containers mode: {exc}")
        return
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        pytest.skip("no Redis: set REDIS_URL, or run with --ehrlab-containers where a Docker engine answers")
    yield url
