"""The unmodified toxiproxy-python client (0.1.1) drives the embedded server.

The client is synchronous (requests) and keeps its endpoint in class state (`APIConsumer`), so the
server runs in a background loop and each test points the client at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tests.toxiproxy.support import ToxiproxyApi, accepts, connect, round_trip, upstream_server

pytestmark = pytest.mark.real_network


@pytest.fixture
def client(api: ToxiproxyApi, embedded: None) -> Iterator[toxiproxy.Toxiproxy]:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    saved = (APIConsumer.host, APIConsumer.port)
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer(host, int(port))
    try:
        yield server
    finally:
        APIConsumer.host, APIConsumer.port = saved


def test_the_client_sees_a_running_server(client: toxiproxy.Toxiproxy) -> None:
    assert client.running()
    assert client.version().startswith(b'{"version": "')
    assert client.proxies() == {}


def test_create_list_toxics_down_reset_destroy(client: toxiproxy.Toxiproxy) -> None:
    with upstream_server() as upstream:
        proxy = client.create(upstream=upstream.address, name="echo")
        assert (proxy.name, proxy.upstream, proxy.enabled) == ("echo", upstream.address, True)
        assert proxy.listen.startswith("127.0.0.1:")
        assert not proxy.listen.endswith(":0")
        assert set(client.proxies()) == {"echo"}
        assert client.get_proxy("echo").listen == proxy.listen

        proxy.add_toxic(type="latency", attributes={"latency": 120})
        proxy.add_toxic(type="timeout", stream="upstream", name="cut", toxicity=0.0, attributes={"timeout": 0})
        toxics = proxy.toxics()
        assert set(toxics) == {"latency_downstream", "cut"}
        assert toxics["latency_downstream"].attributes == {"latency": 120, "jitter": 0}
        assert (toxics["cut"].stream, toxics["cut"].toxicity) == ("upstream", 0.0)
        with connect(proxy.listen) as sock:
            data, rtt = round_trip(sock)
            assert data == b"ping"
            assert rtt >= 0.115

        assert proxy.destroy_toxic("cut") is True
        assert proxy.get_toxic("cut") is None

        with proxy.down():
            assert not accepts(proxy.listen)
        assert accepts(proxy.listen)

        assert client.reset() is True
        assert proxy.toxics() == {}

        assert client.destroy(proxy) is True
        assert client.proxies() == {}


def test_errors_map_to_the_clients_exceptions(client: toxiproxy.Toxiproxy) -> None:
    proxy = client.create(upstream="127.0.0.1:1", name="p")
    with pytest.raises(ProxyExists):
        client.create(upstream="127.0.0.1:1", name="p")
    proxy.add_toxic(type="latency")
    with pytest.raises(ProxyExists, match="toxic already exists"):
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic, match="invalid toxic type"):
        proxy.add_toxic(type="asteroid")
    with pytest.raises(NotFound, match="toxic not found"):
        proxy.destroy_toxic("nope")
    client.destroy_all()
    assert client.proxies() == {}


def test_client_side_populate(client: toxiproxy.Toxiproxy) -> None:
    created = client.populate([{"name": "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
                               {"name": "b", "upstream": "127.0.0.1:2"}])
    assert [p.name for p in created] == ["a", "b"]
    assert set(client.proxies()) == {"a", "b"}
