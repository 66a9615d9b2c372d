"""Fixtures for the queue's tests: one `store` factory parametrised over SQLite and Redis, so every
behaviour test runs on both stores, and a session-wide throwaway redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from integrations.queue.redis_store import RedisStore
from integrations.queue.sqlite_store import SqliteStore
from integrations.queue.store import JobStore
from tests.integrations.queue.redis_server import RedisServer, missing_reason, redis_binary, redis_required

StoreFactory = Callable[[str], JobStore]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if redis_binary() is None:
        if redis_required():
            pytest.fail(missing_reason())
        pytest.skip(missing_reason())
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's server, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """`make_store(queue_name)`: a store on this test's backend (Redis with the blocking client: virtual time)."""
    made: list[SqliteStore | RedisStore] = []

    if request.param == "sqlite":
        def factory(queue: str) -> JobStore:
            store = SqliteStore(tmp_path / "queue.db", queue)
            made.append(store)
            return store
    else:
        url: str = request.getfixturevalue("redis_url")

        def factory(queue: str) -> JobStore:
            store = RedisStore.connect(url, queue, blocking=True)
            made.append(store)
            return store

    yield factory
    for store in made:  # both close synchronously inside (sqlite3, the blocking redis client)
        asyncio.run(store.close())
