"""testcontainers mode: real Toxiproxy and Redis containers where a Docker engine answers; a skip that
says why where none does (these machines), and the "no Docker" detection tested on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from harness.containers import (
    REDIS_IMAGE,
    TOXIPROXY_IMAGE,
    DockerUnavailable,
    docker_unavailable_reason,
    redis_container,
    require_docker,
    toxiproxy_container,
)
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]
NO_DOCKER = docker_unavailable_reason()
needs_docker = pytest.mark.skipif(NO_DOCKER is not None, reason=f"testcontainers: {NO_DOCKER}")


def test_images_match_the_compose_file() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert services["toxiproxy"]["image"] == TOXIPROXY_IMAGE
    assert services["redis"]["image"] == REDIS_IMAGE


def test_no_socket_and_no_docker_host_is_reported() -> None:
    reason = docker_unavailable_reason({}, path_exists=lambda _: False, ping=lambda: None)
    assert reason is not None
    assert "DOCKER_HOST is unset" in reason
    assert "/var/run/docker.sock" in reason


def test_docker_host_naming_a_missing_socket_is_reported() -> None:
    reason = docker_unavailable_reason({"DOCKER_HOST": "unix:///run/nope.sock"}, path_exists=lambda _: False,
                                       ping=lambda: None)
    assert reason is not None
    assert "/run/nope.sock" in reason


def test_an_engine_that_does_not_answer_is_reported() -> None:
    def refuse() -> None:
        raise ConnectionRefusedError("connection refused")

    reason = docker_unavailable_reason({"DOCKER_HOST": "tcp://127.0.0.1:1"}, path_exists=lambda _: True, ping=refuse)
    assert reason is not None
    assert "tcp://127.0.0.1:1" in reason
    assert "ConnectionRefusedError" in reason


def test_an_engine_that_answers_is_available() -> None:
    assert docker_unavailable_reason({}, path_exists=lambda _: True, ping=lambda: None) is None


def test_the_error_is_typed_and_carries_its_reason() -> None:
    if NO_DOCKER is None:
        pytest.skip("a Docker engine answers here")
    with pytest.raises(DockerUnavailable) as caught:
        require_docker()
    assert caught.value.reason == NO_DOCKER
    assert isinstance(caught.value, HarnessError)
    with pytest.raises(DockerUnavailable), toxiproxy_container():
        pass  # pragma: no cover - never entered without an engine
    with pytest.raises(DockerUnavailable), redis_container():
        pass  # pragma: no cover - never entered without an engine


@needs_docker
def test_real_toxiproxy_container_answers_the_lab_api() -> None:
    from harness.netem import ToxiproxyApi

    async def version(url: str) -> str:
        api = ToxiproxyApi(url)
        try:
            return str(await api.version())
        finally:
            await api.aclose()

    with toxiproxy_container() as url:
        assert asyncio.run(version(url))


@needs_docker
def test_real_redis_container_serves_the_job_store() -> None:
    import redis

    with redis_container() as url:
        client = redis.Redis.from_url(url)
        try:
            assert client.ping()
            assert client.config_get("appendonly")["appendonly"] == "yes"
        finally:
            client.close()
