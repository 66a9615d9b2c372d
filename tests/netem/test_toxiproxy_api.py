"""The real-mode client of Toxiproxy's HTTP API, against a recording fake that answers with the
statuses and bodies of `../shared/reference/toxiproxy.md §1` (no sockets)."""

from __future__ import annotations

import json

import httpx
import pytest

from harness.clock import run_virtual
from harness.netem import NetworkControlError, Toxic, ToxiproxyApi


class FakeToxiproxy:
    """Just enough of Toxiproxy 2.12's API: statuses, JSON shapes, text/plain error bodies."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.proxies: dict[str, dict[str, object]] = {}
        self.toxics: dict[str, dict[str, dict[str, object]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        parts = request.url.path.strip("/").split("/")
        if parts == ["version"]:
            return httpx.Response(200, text='{"version": "2.12.0"}\n')
        if parts == ["proxies"] and request.method == "POST":
            if body["name"] in self.proxies:
                return self.error(409, "proxy already exists")
            proxy = {"name": body["name"], "listen": "127.0.0.1:40001", "upstream": body["upstream"],
                     "enabled": True, "Logger": {}, "toxics": []}
            self.proxies[body["name"]] = proxy
            self.toxics[body["name"]] = {}
            return httpx.Response(201, json=proxy)
        name = parts[1]
        if name not in self.proxies:
            return self.error(404, "proxy not found")
        if len(parts) == 2 and request.method == "DELETE":
            del self.proxies[name]
            return httpx.Response(204)
        if len(parts) == 2 and request.method == "PATCH":
            self.proxies[name]["enabled"] = body["enabled"]
            return httpx.Response(200, json=self.proxies[name])
        if len(parts) == 3 and request.method == "POST":
            if body["name"] in self.toxics[name]:
                return self.error(409, "toxic already exists")
            self.toxics[name][body["name"]] = body
            return httpx.Response(200, json=body)
        if len(parts) == 4 and request.method == "DELETE":
            if self.toxics[name].pop(parts[3], None) is None:
                return self.error(404, "toxic not found")
            return httpx.Response(204)
        return httpx.Response(405)

    @staticmethod
    def error(status: int, message: str) -> httpx.Response:
        return httpx.Response(status, text=json.dumps({"error": message, "status": status}) + "\n",
                              headers={"Content-Type": "text/plain; charset=utf-8"})


def test_proxy_lifecycle_sends_the_documented_calls() -> None:
    fake = FakeToxiproxy()

    async def main() -> str:
        api = ToxiproxyApi("http://toxiproxy.test:8474/", transport=httpx.MockTransport(fake))
        assert await api.version() == "2.12.0"
        info = await api.create_proxy("ehrlab-medplum-5000", upstream="127.0.0.1:5000")
        proxy = api.proxy(info, scale=20)
        await proxy.add_toxic(Toxic("ehrlab-f1", "latency", "upstream", 0.5, {"latency": 800, "jitter": 100}))
        await proxy.set_enabled(False)
        await proxy.set_enabled(True)
        await proxy.remove_toxic("ehrlab-f1")
        await proxy.delete()
        await api.aclose()
        return proxy.url

    assert run_virtual(main) == "http://127.0.0.1:40001"
    assert fake.calls == [
        ("GET", "/version", None),
        ("POST", "/proxies", {"name": "ehrlab-medplum-5000", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5000",
                              "enabled": True}),
        # scale 20: 800 ms of scenario time is 40 ms on the proxy's wall clock
        ("POST", "/proxies/ehrlab-medplum-5000/toxics", {"name": "ehrlab-f1", "type": "latency", "stream": "upstream",
                                                         "toxicity": 0.5, "attributes": {"latency": 40, "jitter": 5}}),
        ("PATCH", "/proxies/ehrlab-medplum-5000", {"enabled": False}),
        ("PATCH", "/proxies/ehrlab-medplum-5000", {"enabled": True}),
        ("DELETE", "/proxies/ehrlab-medplum-5000/toxics/ehrlab-f1", None),
        ("DELETE", "/proxies/ehrlab-medplum-5000", None),
    ]


def test_a_stale_proxy_of_the_same_name_is_replaced() -> None:
    fake = FakeToxiproxy()
    fake.proxies["p"] = {"name": "p", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:9", "enabled": True}

    async def main() -> str:
        api = ToxiproxyApi("http://toxiproxy.test", transport=httpx.MockTransport(fake))
        info = await api.create_proxy("p", upstream="127.0.0.1:5000")
        await api.aclose()
        return info.upstream

    assert run_virtual(main) == "127.0.0.1:5000"
    assert [(m, p) for m, p, _ in fake.calls] == [("POST", "/proxies"), ("DELETE", "/proxies/p"), ("POST", "/proxies")]


def test_api_errors_become_network_control_errors_with_toxiproxys_message() -> None:
    fake = FakeToxiproxy()

    async def main() -> list[str]:
        api = ToxiproxyApi("http://toxiproxy.test", transport=httpx.MockTransport(fake))
        proxy = api.proxy(await api.create_proxy("p", upstream="127.0.0.1:5000"))
        await proxy.add_toxic(Toxic("t", "timeout"))
        messages = []
        for call in (proxy.add_toxic(Toxic("t", "timeout")), proxy.remove_toxic("nope"),
                     api.add_toxic("ghost", Toxic("t", "timeout"))):
            with pytest.raises(NetworkControlError) as info:
                await call
            messages.append(str(info.value))
        await api.aclose()
        return messages

    assert run_virtual(main) == [
        "Toxiproxy at http://toxiproxy.test: POST /proxies/p/toxics answered HTTP 409 (toxic already exists)",
        "Toxiproxy at http://toxiproxy.test: DELETE /proxies/p/toxics/nope answered HTTP 404 (toxic not found)",
        "Toxiproxy at http://toxiproxy.test: POST /proxies/ghost/toxics answered HTTP 404 (proxy not found)",
    ]


def test_an_unreachable_server_is_a_network_control_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    async def main() -> str:
        api = ToxiproxyApi("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
        with pytest.raises(NetworkControlError) as info:
            await api.version()
        await api.aclose()
        return str(info.value)

    assert run_virtual(main) == "Toxiproxy at http://127.0.0.1:9: GET /version failed (ConnectError)"
