"""Toxiproxy's HTTP API, black-box: `../shared/reference/toxiproxy.md` §1 and §3 items 1-31.

Runs against the embedded server, or against any Toxiproxy when `TOXIPROXY_URL` is set.
"""

from __future__ import annotations

import re
import socket

import pytest

from tests.toxiproxy.support import ERROR_TYPE, ToxiproxyApi, accepts, address, assert_error

pytestmark = pytest.mark.real_network

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# proxies ------------------------------------------------------------------------------------------


def test_empty_index_is_an_object(api: ToxiproxyApi) -> None:
    response = api.http.get("/proxies")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == "{}"


def test_create_resolves_localhost_and_shows_the_exact_shape(api: ToxiproxyApi) -> None:
    port = free_port()
    response = api.http.post("/proxies", json={"name": "echo", "listen": f"localhost:{port}",
                                               "upstream": "localhost:20001"})
    assert response.status_code == 201
    assert response.text == (f'{{"name":"echo","listen":"127.0.0.1:{port}","upstream":"localhost:20001",'
                             '"enabled":true,"Logger":{},"toxics":[]}')
    shown = api.http.get("/proxies/echo")
    assert shown.status_code == 200
    assert shown.text == response.text
    assert list(api.http.get("/proxies").json()) == ["echo"]
    assert accepts(f"127.0.0.1:{port}")


def test_index_is_keyed_and_sorted_by_name(api: ToxiproxyApi) -> None:
    for name in ("b", "a", "c"):
        api.create(name, "127.0.0.1:1")
    index = api.http.get("/proxies")
    assert list(index.json()) == ["a", "b", "c"]
    assert index.json()["b"]["name"] == "b"


def test_port_zero_becomes_the_bound_port(api: ToxiproxyApi) -> None:
    proxy = api.create("p", "127.0.0.1:1", listen="127.0.0.1:0")
    host, port = address(proxy["listen"])
    assert (host, port != 0) == ("127.0.0.1", True)
    assert accepts(proxy["listen"])


def test_disabled_proxy_keeps_its_literal_listen_and_refuses(api: ToxiproxyApi) -> None:
    port = free_port()
    proxy = api.create("p", "127.0.0.1:1", listen=f"localhost:{port}", enabled=False)
    assert (proxy["enabled"], proxy["listen"]) == (False, f"localhost:{port}")
    assert not accepts(f"127.0.0.1:{port}")
    enabled = api.http.post("/proxies/p", json={"enabled": True})
    assert enabled.status_code == 200
    assert enabled.json()["listen"] == f"127.0.0.1:{port}"
    assert accepts(f"127.0.0.1:{port}")
    disabled = api.http.patch("/proxies/p", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert not accepts(f"127.0.0.1:{port}")


@pytest.mark.parametrize(("body", "message"), [
    ({}, "missing required field: name"),
    ({"name": "", "upstream": "x:1"}, "missing required field: name"),
    ({"name": "p"}, "missing required field: upstream"),
    ({"name": "p", "upstream": ""}, "missing required field: upstream"),
])
def test_create_requires_name_and_upstream(api: ToxiproxyApi, body: dict[str, str], message: str) -> None:
    assert_error(api.http.post("/proxies", json=body), 400, message)


def test_duplicate_name_conflicts_until_deleted(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    assert_error(api.http.post("/proxies", json={"name": "p", "upstream": "127.0.0.1:2"}), 409,
                 "proxy already exists")
    assert api.http.delete("/proxies/p").status_code == 204
    api.create("p", "127.0.0.1:2")


def test_port_conflict_is_a_500_until_the_other_proxy_goes(api: ToxiproxyApi) -> None:
    first = api.create("first", "127.0.0.1:1")
    clash = api.http.post("/proxies", json={"name": "second", "upstream": "127.0.0.1:1", "listen": first["listen"]})
    assert_error(clash, 500, f"listen tcp {first['listen']}: bind: address already in use")
    assert api.http.delete("/proxies/first").status_code == 204
    api.create("second", "127.0.0.1:1", listen=first["listen"])


def test_unparseable_listen_is_a_500(api: ToxiproxyApi) -> None:
    response = api.http.post("/proxies", json={"name": "p", "upstream": "x:1", "listen": "local373"})
    assert_error(response, 500, "listen tcp: address local373: missing port in address")
    assert api.http.get("/proxies").json() == {}


def test_update_moves_the_listener(api: ToxiproxyApi) -> None:
    old = api.create("p", "127.0.0.1:1")["listen"]
    new_port = free_port()
    moved = api.http.patch("/proxies/p", json={"listen": f"127.0.0.1:{new_port}"})
    assert moved.status_code == 200
    assert moved.json()["listen"] == f"127.0.0.1:{new_port}"
    assert not accepts(old)
    assert accepts(f"127.0.0.1:{new_port}")


def test_update_ignores_name_and_keeps_other_fields(api: ToxiproxyApi) -> None:
    created = api.create("p", "127.0.0.1:1")
    updated = api.http.post("/proxies/p", json={"name": "renamed", "upstream": "127.0.0.1:2"})
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["upstream"]) == ("p", "127.0.0.1:2")
    assert updated.json()["listen"] == created["listen"]
    assert "renamed" not in api.http.get("/proxies").json()


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"", 400, "bad request body: EOF"),
    (b"nope", 400, "bad request body: invalid character 'o' in literal null (expecting 'u')"),
    (b'{"enabled": "yes"}', 400,
     "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool"),
    (b'{"listen": "bad"}', 500, "address bad: missing port in address"),
])
def test_update_errors(api: ToxiproxyApi, body: bytes, status: int, message: str) -> None:
    api.create("p", "127.0.0.1:1")
    assert_error(api.http.patch("/proxies/p", content=body), status, message)


def test_unknown_proxy_is_404_everywhere(api: ToxiproxyApi) -> None:
    for method, path in (("GET", "/proxies/x"), ("PATCH", "/proxies/x"), ("POST", "/proxies/x"),
                         ("DELETE", "/proxies/x"), ("GET", "/proxies/x/toxics"), ("POST", "/proxies/x/toxics"),
                         ("GET", "/proxies/x/toxics/t"), ("DELETE", "/proxies/x/toxics/t")):
        assert_error(api.http.request(method, path, content=b"{}"), 404, "proxy not found")


def test_delete_closes_the_port_then_404s(api: ToxiproxyApi) -> None:
    listen = api.create("p", "127.0.0.1:1")["listen"]
    deleted = api.http.delete("/proxies/p")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert not accepts(listen)
    assert api.http.get("/proxies").json() == {}
    assert_error(api.http.delete("/proxies/p"), 404, "proxy not found")


# populate -----------------------------------------------------------------------------------------


def test_populate_creates_in_order_and_listens(api: ToxiproxyApi) -> None:
    body = [{"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
            {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2", "enabled": False}]
    response = api.http.post("/populate", json=body)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["one", "two"]
    assert [p["enabled"] for p in proxies] == [True, False]
    assert accepts(proxies[0]["listen"])
    api.add_toxic("one", "latency", attributes={"latency": 1})


def test_populate_keeps_an_equal_proxy_with_its_toxics_and_replaces_a_changed_one(api: ToxiproxyApi) -> None:
    kept = api.create("kept", "127.0.0.1:1")
    changed = api.create("changed", "127.0.0.1:1")
    api.add_toxic("kept", "latency", attributes={"latency": 5})
    api.add_toxic("changed", "latency", attributes={"latency": 5})
    port = address(kept["listen"])[1]
    response = api.http.post("/populate", json=[
        {"name": "kept", "listen": f"localhost:{port}", "upstream": "127.0.0.1:1"},
        {"name": "changed", "listen": changed["listen"], "upstream": "127.0.0.1:9"}])
    assert response.status_code == 201
    by_name = {p["name"]: p for p in response.json()["proxies"]}
    assert by_name["kept"]["listen"] == kept["listen"]
    assert [t["name"] for t in by_name["kept"]["toxics"]] == ["latency_downstream"]
    assert (by_name["changed"]["upstream"], by_name["changed"]["toxics"]) == ("127.0.0.1:9", [])


def test_populate_validates_every_entry_before_creating_any(api: ToxiproxyApi) -> None:
    response = api.http.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:1"}, {"upstream": "x:1"}])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"error":"missing required field: name at proxy 2","status":400,"proxies":null}'
    missing_upstream = api.http.post("/populate", json=[{"name": "a"}])
    assert missing_upstream.json()["error"] == "missing required field: upstream at proxy 1"
    assert api.http.get("/proxies").json() == {}


def test_populate_is_not_transactional_on_listen_errors(api: ToxiproxyApi) -> None:
    response = api.http.post("/populate", json=[
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "b", "listen": "bad", "upstream": "127.0.0.1:1"},
        {"name": "c", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}])
    assert response.status_code >= 400
    assert response.json()["error"]
    assert [p["name"] for p in response.json()["proxies"]] == ["a"]
    assert list(api.http.get("/proxies").json()) == ["a"]


def test_populate_edge_bodies(api: ToxiproxyApi) -> None:
    empty = api.http.post("/populate", json=[])
    assert (empty.status_code, empty.text) == (201, '{"proxies":null}')
    not_a_list = api.http.post("/populate", json={"name": "a"})
    assert not_a_list.status_code == 400
    assert not_a_list.json()["error"].startswith("bad request body: json: cannot unmarshal object into Go value")
    assert not_a_list.json()["proxies"] is None


# reset --------------------------------------------------------------------------------------------


def test_reset_enables_everything_and_removes_toxics(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1", enabled=False)
    api.create("q", "127.0.0.1:1")
    api.add_toxic("p", "latency", attributes={"latency": 100})
    api.add_toxic("q", "timeout", stream="upstream")
    reset = api.http.post("/reset")
    assert (reset.status_code, reset.content) == (204, b"")
    proxies = api.http.get("/proxies").json()
    assert sorted(proxies) == ["p", "q"]
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())
    assert accepts(proxies["p"]["listen"])


# routing and headers ------------------------------------------------------------------------------


def test_version(api: ToxiproxyApi) -> None:
    response = api.http.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert re.fullmatch(r'\{"version": "[^"]+"\}\n', response.text)


def test_request_id_on_every_routed_response(api: ToxiproxyApi) -> None:
    ids = {api.http.get("/version").headers["x-toxiproxy-request-id"],
           api.http.get("/proxies").headers["x-toxiproxy-request-id"],
           api.http.get("/proxies/missing").headers["x-toxiproxy-request-id"]}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9a-v]{20}", request_id) for request_id in ids)


def test_browsers_are_refused(api: ToxiproxyApi) -> None:
    browser = api.http.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert browser.status_code == 403
    assert browser.headers["content-type"] == ERROR_TYPE
    assert browser.text == "User agent not allowed\n"
    assert api.http.get("/proxies", headers={"User-Agent": "Wget/2.1"}).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/proxies/x"), ("GET", "/reset"), ("DELETE", "/proxies"), ("GET", "/populate"), ("OPTIONS", "/proxies"),
    ("PUT", "/proxies/x/toxics/y"), ("HEAD", "/version"),
])
def test_wrong_method_is_405_with_no_body(api: ToxiproxyApi, method: str, path: str) -> None:
    response = api.http.request(method, path)
    assert (response.status_code, response.content) == (405, b"")


@pytest.mark.parametrize("path", ["/nope", "/proxies/", "/proxies/x/toxics/", "/proxies/x/y", "/Proxies"])
def test_unknown_paths_are_404(api: ToxiproxyApi, path: str) -> None:
    response = api.http.get(path)
    assert response.status_code == 404
    assert response.text == "404 page not found\n"


def test_content_type_of_requests_is_not_checked(api: ToxiproxyApi) -> None:
    response = api.http.post("/proxies", content=b'{"name":"p","upstream":"127.0.0.1:1","listen":"127.0.0.1:0"}',
                             headers={"Content-Type": "text/x-whatever"})
    assert response.status_code == 201


def raw_get(api: ToxiproxyApi, path: str) -> bytes:
    """A GET sent byte for byte (httpx would normalise the path first)."""
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while part := sock.recv(65536):
            reply += part
    return reply


@pytest.mark.parametrize(("path", "clean"), [("//proxies", "/proxies"), ("/proxies/../version", "/version"),
                                             ("/proxies/./x/", "/proxies/x/")])
def test_unclean_paths_redirect_to_the_clean_one(api: ToxiproxyApi, path: str, clean: str) -> None:
    head = raw_get(api, path).split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 301 ")
    assert f"\r\nlocation: {clean}\r\n".encode() in head + b"\r\n"
