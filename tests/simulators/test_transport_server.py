"""How a dropped connection looks to an httpx client: in process (VirtualTransport) and over TCP (serve)."""

from __future__ import annotations

import asyncio
import logging
import signal

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from harness.clock import RealClock, run_virtual
from simulators.errors import ConnectionDropped
from simulators.server import serve
from simulators.transport import VirtualTransport
from tests.simulators.support import ADMIN, CLIENT_ID, CLIENT_SECRET, bearer, make_medplum


async def _dropping_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise ConnectionDropped("test")


async def _failing_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise KeyError("a simulator bug")


def test_virtual_transport_turns_a_drop_into_remote_protocol_error() -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=VirtualTransport(_dropping_app), base_url="http://x.test") as client:
            with pytest.raises(httpx.RemoteProtocolError) as error:
                await client.get("/anything")
            assert str(error.value) == "Server disconnected without sending a response."
            assert error.value.request.url == "http://x.test/anything"

    run_virtual(main)


def test_virtual_transport_lets_simulator_bugs_through() -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=VirtualTransport(_failing_app), base_url="http://x.test") as client:
            with pytest.raises(KeyError, match="a simulator bug"):
                await client.get("/anything")

    run_virtual(main)


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.0.2.1"])
def test_serve_binds_loopback_only(host: str) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="loopback"):
            async with serve(_dropping_app, host=host):
                pass

    asyncio.run(main())


@pytest.mark.real_network
def test_medplum_over_real_http_with_a_dropped_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        sim = make_medplum(clock=RealClock())
        [pid] = sim.seed_patients(1)
        handler_before = signal.getsignal(signal.SIGINT)
        async with serve(sim.app) as base_url:
            assert base_url.startswith("http://127.0.0.1:")
            assert signal.getsignal(signal.SIGINT) is handler_before  # uvicorn did not take the signals
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
                token = await client.post("/oauth2/token", data={
                    "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
                assert token.status_code == 200
                auth = bearer(token.json()["access_token"])
                read = await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
                assert read.status_code == 200
                assert read.json()["id"] == pid
                assert read.headers["etag"] == f'W/"{read.json()["meta"]["versionId"]}"'
                assert "server" not in read.headers
                search = await client.get("/fhir/R4/Patient", params={"_id": pid}, headers=auth)
                assert search.json()["link"][0]["url"] == f"{base_url}/fhir/R4/Patient?_id={pid}&_count=20"

                drop = await client.put("/admin/chaos/outage", json={"mode": "drop"}, headers=ADMIN)
                assert drop.status_code == 200
                for _ in range(3):  # on a reused keep-alive connection and on fresh ones
                    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                        await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
                assert sim.chaos.injected.outage == 3

                status = await client.put("/admin/chaos/outage", json={"mode": "status"}, headers=ADMIN)
                assert status.status_code == 200
                assert (await client.get("/healthcheck")).status_code == 503
                assert (await client.delete("/admin/chaos", headers=ADMIN)).status_code == 200
                assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).status_code == 200
            # leave the server with an idle keep-alive connection open: shutdown must still be clean
            idle = httpx.AsyncClient(base_url=base_url)
            assert (await idle.get("/healthcheck")).status_code == 200
        async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthcheck")
        await idle.aclose()

    caplog.set_level(logging.WARNING)
    asyncio.run(main())
    # the drops were clean: uvicorn neither logged an app error nor tried to answer 500
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


@pytest.mark.real_network
def test_serve_shuts_down_when_the_block_raises() -> None:
    async def main() -> str:
        with pytest.raises(RuntimeError, match="boom"):
            async with serve(make_medplum(clock=RealClock()).app) as base_url:
                raise RuntimeError("boom")
        return base_url

    base_url = asyncio.run(main())

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthcheck")

    asyncio.run(probe())
