"""Fixtures: the API under test is the embedded server, or any Toxiproxy given by `TOXIPROXY_URL`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.toxiproxy.support import BackgroundToxiproxy, ToxiproxyApi


@pytest.fixture(scope="session")
def toxiproxy_url() -> Iterator[str]:
    external = os.environ.get("TOXIPROXY_URL")
    if external:
        yield external.rstrip("/")
        return
    with BackgroundToxiproxy() as server:
        yield server.url


@pytest.fixture(scope="session")
def api_session(toxiproxy_url: str) -> Iterator[ToxiproxyApi]:
    client = ToxiproxyApi(toxiproxy_url)  # one client: building httpx's TLS context takes ~0.1 s
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def api(api_session: ToxiproxyApi) -> Iterator[ToxiproxyApi]:
    """The API with no proxies; whatever a test creates is deleted after it."""
    api_session.clear()
    try:
        yield api_session
    finally:
        api_session.clear()


@pytest.fixture
def embedded() -> None:
    """For tests about this implementation (its defaults, resources, CLI), not about Toxiproxy."""
    if os.environ.get("TOXIPROXY_URL"):
        pytest.skip("checks the embedded server, not the Toxiproxy at TOXIPROXY_URL")
