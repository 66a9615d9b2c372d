"""Toxiproxy's HTTP API for toxics, black-box: `../shared/reference/toxiproxy.md` §1 and §3 items 19-28.

Runs against the embedded server, or against any Toxiproxy when `TOXIPROXY_URL` is set.
"""

from __future__ import annotations

import socket

import pytest

from tests.toxiproxy.support import ToxiproxyApi, assert_error

pytestmark = pytest.mark.real_network

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# toxics -------------------------------------------------------------------------------------------


def test_toxic_round_trip_shape(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    assert api.http.get("/proxies/p/toxics").text == "[]"
    created = api.http.post("/proxies/p/toxics", json={
        "name": "foobar", "type": "latency", "stream": "downstream", "toxicity": 1,
        "attributes": {"latency": 100, "jitter": 10}})
    assert created.status_code == 200
    assert created.text == ('{"attributes":{"latency":100,"jitter":10},"name":"foobar","type":"latency",'
                            '"stream":"downstream","toxicity":1}')
    assert api.http.get("/proxies/p/toxics/foobar").text == created.text
    assert api.http.get("/proxies/p/toxics").text == f"[{created.text}]"
    assert api.http.get("/proxies/p").json()["toxics"] == [created.json()]


@pytest.mark.parametrize(("kind", "attributes"), [
    ("latency", {"latency": 0, "jitter": 0}), ("bandwidth", {"rate": 0}), ("slow_close", {"delay": 0}),
    ("timeout", {"timeout": 0}), ("reset_peer", {"timeout": 0}),
    ("slicer", {"average_size": 0, "size_variation": 0, "delay": 0}), ("limit_data", {"bytes": 0}),
    ("noop", {}),
])
def test_defaults_for_every_toxic_type(api: ToxiproxyApi, kind: str, attributes: dict[str, int]) -> None:
    api.create("p", "127.0.0.1:1")
    toxic = api.add_toxic("p", kind)
    assert toxic == {"attributes": attributes, "name": f"{kind}_downstream", "type": kind,
                     "stream": "downstream", "toxicity": 1}


def test_list_is_upstream_first_then_insertion_order(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    api.add_toxic("p", "latency", name="d1")
    api.add_toxic("p", "noop", name="u1", stream="upstream")
    api.add_toxic("p", "noop", name="d2")
    api.add_toxic("p", "latency", name="u2", stream="upstream")
    assert [t["name"] for t in api.http.get("/proxies/p/toxics").json()] == ["u1", "u2", "d1", "d2"]


def test_stream_is_case_insensitive_and_echoed(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    toxic = api.add_toxic("p", "latency", stream="UPSTREAM", toxicity=0.2)
    assert (toxic["name"], toxic["stream"], toxic["toxicity"]) == ("latency_UPSTREAM", "UPSTREAM", 0.2)


def test_names_are_unique_across_streams(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    first = api.add_toxic("p", "latency", name="same", attributes={"latency": 7})
    for body in ({"type": "latency", "name": "same"}, {"type": "noop", "name": "same", "stream": "upstream"}):
        assert_error(api.http.post("/proxies/p/toxics", json=body), 409, "toxic already exists")
    assert api.http.get("/proxies/p/toxics/same").json() == first
    api.add_toxic("p", "latency", name="other")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"type": "latency", "stream": "walrustream"}', "stream was invalid, can be either upstream or downstream"),
    (b'{"type": "latency", "stream": ""}', "stream was invalid, can be either upstream or downstream"),
    (b'{"type": "asteroid"}', "invalid toxic type"),
    (b'{"attributes": {"latency": 1}}', "invalid toxic type"),
    (b"{", "bad request body: unexpected EOF"),
    (b"[1]", "bad request body: json: cannot unmarshal array into Go value of type toxics.ToxicWrapper"),
    (b'{"type": "latency", "toxicity": "high"}',
     "bad request body: json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32"),
    (b'{"type": "latency", "attributes": {"latency": "100"}}', "bad request body: json: cannot unmarshal string "
     "into Go struct field LatencyToxic.attributes.latency of type int64"),
    (b'{"type": "latency", "attributes": {"latency": 1.5}}', "bad request body: json: cannot unmarshal number 1.5 "
     "into Go struct field LatencyToxic.attributes.latency of type int64"),
    (b'{"type": "slicer", "attributes": {"delay": true}}', "bad request body: json: cannot unmarshal bool "
     "into Go struct field SlicerToxic.attributes.delay of type int"),
    (b'{"type": "walrus", "stream": "sideways"}', "stream was invalid, can be either upstream or downstream"),
])
def test_toxic_create_errors_in_go_order(api: ToxiproxyApi, body: bytes, message: str) -> None:
    api.create("p", "127.0.0.1:1")
    assert_error(api.http.post("/proxies/p/toxics", content=body), 400, message)
    assert api.http.get("/proxies/p/toxics").json() == []


def test_attributes_ignore_unknown_keys_and_match_case_insensitively(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    toxic = api.add_toxic("p", "latency", attributes={"LATENCY": 12, "flavour": "x"})
    assert toxic["attributes"] == {"latency": 12, "jitter": 0}


def test_update_is_partial(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    api.add_toxic("p", "latency", attributes={"latency": 100, "jitter": 10}, toxicity=0.7)
    updated = api.http.post("/proxies/p/toxics/latency_downstream",
                            json={"attributes": {"latency": 1000}, "toxicity": 0.5})
    assert updated.status_code == 200
    assert (updated.json()["attributes"], updated.json()["toxicity"]) == ({"latency": 1000, "jitter": 10}, 0.5)
    again = api.http.patch("/proxies/p/toxics/latency_downstream", json={"attributes": {"jitter": 3},
                                                                        "name": "ignored", "stream": "upstream"})
    assert again.json() == {"attributes": {"latency": 1000, "jitter": 3}, "name": "latency_downstream",
                            "type": "latency", "stream": "downstream", "toxicity": 0.5}


@pytest.mark.parametrize(("body", "message"), [
    (b"", "bad request body: EOF"),
    (b'{"toxicity": "x"}',
     "bad request body: json: cannot unmarshal string into Go struct field .toxicity of type float32"),
    (b'{"attributes": {"jitter": []}}', "bad request body: json: cannot unmarshal array "
     "into Go struct field LatencyToxic.attributes.jitter of type int64"),
])
def test_toxic_update_errors(api: ToxiproxyApi, body: bytes, message: str) -> None:
    api.create("p", "127.0.0.1:1")
    original = api.add_toxic("p", "latency", attributes={"latency": 100})
    assert_error(api.http.patch("/proxies/p/toxics/latency_downstream", content=body), 400, message)
    assert api.http.get("/proxies/p/toxics/latency_downstream").json() == original
    assert_error(api.http.patch("/proxies/p/toxics/nope", content=b"{}"), 404, "toxic not found")


def test_delete_toxic_then_404(api: ToxiproxyApi) -> None:
    api.create("p", "127.0.0.1:1")
    api.add_toxic("p", "latency")
    deleted = api.http.delete("/proxies/p/toxics/latency_downstream")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.http.get("/proxies/p/toxics").json() == []
    assert_error(api.http.delete("/proxies/p/toxics/latency_downstream"), 404, "toxic not found")
    assert_error(api.http.get("/proxies/p/toxics/latency_downstream"), 404, "toxic not found")
