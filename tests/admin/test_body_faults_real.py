"""A truncated body reaches an httpx client as the same error in process and over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from harness.clock import RealClock, run_virtual
from simulators.server import serve
from tests.admin.support import ADMIN, BIG_ITEMS, client_for, make_mini, put_fault


@asynccontextmanager
async def _real_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:  # type: ignore[arg-type]
        yield client


async def _scenario(client: httpx.AsyncClient) -> list[str]:
    """What the client sees for: a whole body, a truncated one (twice), invalid JSON, then a whole one."""
    seen = [f"{(await client.get('/big')).status_code}"]
    await put_fault(client, "malformed-body", {"mode": "truncated", "keep_fraction": 0.3})
    for _ in range(2):  # the second one on a fresh connection (the first was closed)
        try:
            await client.get("/big")
            seen.append("no error")
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)
    await put_fault(client, "malformed-body", {"mode": "invalid-json"})
    broken = await client.get("/big")
    seen.append(f"{broken.status_code} {len(broken.content) == int(broken.headers['content-length'])}")
    await client.delete("/admin/chaos", headers=ADMIN)
    whole = await client.get("/big")
    seen.append(f"{whole.status_code} {len(whole.json()['items']) == BIG_ITEMS}")
    return seen


EXPECTED = ["200", "RemoteProtocolError", "RemoteProtocolError", "200 True", "200 True"]


def test_truncated_body_in_process() -> None:
    async def main() -> list[str]:
        async with client_for(make_mini().sim.app) as client:
            return await _scenario(client)

    assert run_virtual(main) == EXPECTED


@pytest.mark.real_network
def test_truncated_body_over_real_http(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[str]:
        mini = make_mini(clock=RealClock())
        async with _real_client(mini.sim.app) as client:
            seen = await _scenario(client)
            entries = (await client.get("/admin/requests", headers=ADMIN, params={"path": "/big"})).json()["entries"]
            assert [e["outcome"] for e in entries] == ["response", "truncated", "truncated", "response", "response"]
            return seen

    caplog.set_level(logging.WARNING)
    assert asyncio.run(main()) == EXPECTED
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


@pytest.mark.real_network
def test_slow_body_over_real_http_takes_its_duration() -> None:
    clock = RealClock()

    async def main() -> tuple[float, int]:
        mini = make_mini(clock=clock)
        async with _real_client(mini.sim.app) as client:
            await put_fault(client, "slow-body", {"duration_ms": 300, "chunks": 3})
            start = clock.monotonic()
            response = await client.get("/big")
            return clock.monotonic() - start, len(response.json()["items"])

    elapsed, items = asyncio.run(main())
    assert items == BIG_ITEMS
    assert 0.3 <= elapsed < 2.0


