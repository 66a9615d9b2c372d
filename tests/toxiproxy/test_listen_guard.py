"""The lab's Toxiproxy-compatible server is served on loopback (or every interface with --allow-any-host); the
proxies its unauthenticated API creates follow the same rule, so a client cannot open a port to the network
through it. Nothing here binds anything but loopback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from simulators.toxiproxy import proxy as proxy_module
from simulators.toxiproxy.proxy import ApiError, check_listen
from simulators.toxiproxy.server import serve_toxiproxy

pytestmark = pytest.mark.real_network


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080", "[2001:db8::1]:80", "db.example:99"])
def test_a_proxy_on_another_interface_is_refused_before_it_binds(listen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(address: str) -> object:
        raise AssertionError(f"bound {address}")

    monkeypatch.setattr(proxy_module, "listen", never)

    async def main() -> tuple[int, str, int]:
        async with serve_toxiproxy() as url, httpx.AsyncClient(base_url=url) as client:
            created = await client.post("/proxies", json={"name": "p", "listen": listen, "upstream": "127.0.0.1:1"})
            index = await client.get("/proxies")
            return created.status_code, created.json()["error"], len(index.json())

    status, error, proxies = asyncio.run(main())
    assert status == 403
    assert "listens on loopback only" in error
    assert "--allow-any-host" in error
    assert proxies == 0  # nothing was added


def test_loopback_proxies_are_served_and_any_host_lifts_the_rule() -> None:
    async def main() -> int:
        async with serve_toxiproxy() as url, httpx.AsyncClient(base_url=url) as client:
            response = await client.post("/proxies", json={"name": "p", "listen": "localhost:0",
                                                            "upstream": "127.0.0.1:1"})
            return response.status_code

    assert asyncio.run(main()) == 201
    for listen in ("127.0.0.1:0", "localhost:0", ":0", "[::1]:0"):
        check_listen(listen, any_host=False)
    check_listen("0.0.0.0:8474", any_host=True)  # a container's proxy, started with --allow-any-host
    with pytest.raises(ApiError, match="loopback only"):
        check_listen("0.0.0.0:8474", any_host=False)
