"""The FHIR core's fast paths answer exactly as the plain ones they replace (issue 3's throughput work).

- `FhirFastPath` + `fhir_asgi` against the router included in FastAPI: same status, headers and body for
  a script of requests (CRUD, search, history, bundles, unknown paths, wrong methods, odd paths);
- `JsonBytesResponse` against Starlette's `Response`; `dump_json` against `json.dumps`;
- the page-link query against `urlencode`; `fhir_base` against Starlette's `request.url`;
- the store's JSON and current-list caches never serve a replaced version.
"""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from harness.clock import VirtualClock, run_virtual
from simulators.fhir import FhirPersonality, allow_all, fhir_router, install_outcome_handlers, store_for
from simulators.fhir.dispatch import FhirFastPath, fhir_asgi
from simulators.fhir.http import JsonBytesResponse, dump_bundle, fhir_base
from simulators.fhir.outcome import dump_json
from simulators.fhir.paging import _query, searchset
from simulators.transport import VirtualTransport
from tests.fhir_core.support import BASE, PREFIX, observation, patient

#: (method, path relative to the FHIR base, JSON body or None, extra headers)
Step = tuple[str, str, Any, dict[str, str]]

SCRIPT: list[Step] = [
    ("POST", "/Patient", patient(), {}),
    ("POST", "/Patient", patient(gender="male"), {"Prefer": "return=minimal"}),
    ("GET", "/Patient/{p}", None, {}),
    ("HEAD", "/Patient/{p}", None, {}),
    ("GET", "/Patient/{p}/_history/1", None, {}),
    ("GET", "/Patient/{p}/_history", None, {}),
    ("PUT", "/Patient/{p}", {**patient(gender="other"), "id": "{p}"}, {"If-Match": 'W/"1"'}),
    ("PUT", "/Patient/{p}", {**patient(), "id": "{p}"}, {"If-Match": 'W/"1"'}),
    ("POST", "/Observation", observation("{p}"), {}),
    ("GET", "/Patient", None, {}),
    ("GET", "/Patient?_count=1", None, {}),
    ("GET", "/Patient?_count=1&_offset=1&gender=male", None, {}),
    ("GET", "/Patient?nonsense=1&_sort=-birthdate", None, {}),
    ("GET", "/Patient?_elements=gender", None, {}),
    ("GET", "/Patient?_summary=count", None, {}),
    ("GET", "/Patient?_count=x", None, {}),
    ("GET", "/Observation?subject=Patient/{p}&_count=5", None, {}),
    ("GET", "/Patient/{p}/$everything", None, {}),
    ("GET", "/_history?_count=2", None, {}),
    ("GET", "/Patient/_history", None, {}),
    ("GET", "/metadata", None, {}),
    ("GET", "/.well-known/smart-configuration", None, {}),
    ("POST", "/", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/{p}"}},
        {"request": {"method": "GET", "url": "Patient?_count=1"}},
        {"request": {"method": "GET", "url": "Patient/nope"}}]}, {}),
    ("PATCH", "/Patient/{p}", [{"op": "replace", "path": "/gender", "value": "female"}],
     {"Content-Type": "application/json-patch+json"}),
    ("POST", "/Patient/_search", None, {"Content-Type": "application/x-www-form-urlencoded"}),
    ("GET", "/Patient/nope", None, {}),
    ("GET", "/Nope/1", None, {}),
    ("GET", "/Patient/{p}/nothing/here/at/all", None, {}),
    ("OPTIONS", "/Patient/{p}", None, {}),
    ("OPTIONS", "/metadata", None, {}),
    ("TRACE", "/", None, {}),
    ("GET", "/Patient/", None, {}),
    ("GET", "//Patient//{p}", None, {}),
    ("GET", "/Patient/%24export", None, {}),
    ("DELETE", "/Patient/{p}", None, {}),
    ("GET", "/Patient/{p}", None, {}),
    ("DELETE", "/Patient?gender=male", None, {}),
    ("GET", "/Patient", None, {}),
]


def _app(personality: FhirPersonality, *, fast: bool, prefix: str = PREFIX) -> FastAPI:
    """`support.core_app`'s app (seed 7), with the FHIR core also served by `FhirFastPath` if `fast`."""
    clock = VirtualClock()
    rng = random.Random(7)
    store = store_for(personality, clock, random.Random(rng.getrandbits(64)))
    app = FastAPI()
    router = fhir_router(store=store, personality=personality, clock=clock, rng=random.Random(rng.getrandbits(64)),
                         authorize=allow_all)
    install_outcome_handlers(app)
    app.include_router(router, prefix=prefix)
    if fast:
        app.add_middleware(FhirFastPath, prefix=prefix, fhir=fhir_asgi(router), handlers=app.exception_handlers)
    return app


async def _play(app: Any, base: str = BASE + PREFIX) -> list[tuple[int, dict[str, str], bytes]]:
    answers: list[tuple[int, dict[str, str], bytes]] = []
    patient_id = ""
    async with httpx.AsyncClient(transport=VirtualTransport(app), base_url=base) as client:
        for method, path, body, headers in SCRIPT:
            url = path.replace("{p}", patient_id)
            content = None if body is None else json.dumps(body).replace("{p}", patient_id).encode()
            if content is not None and "Content-Type" not in headers:
                headers = {**headers, "Content-Type": "application/fhir+json"}
            response = await client.request(method, url, content=content, headers=headers)
            if not patient_id and response.status_code == 201:
                patient_id = response.json()["id"]
            answers.append((response.status_code, dict(response.headers), response.content))
    return answers


@pytest.mark.parametrize(("prefix", "base"), [(PREFIX, BASE + PREFIX), ("/r4/{tenant}", BASE + "/r4/ec2458f2")])
def test_fast_path_answers_exactly_as_the_included_router(prefix: str, base: str) -> None:
    personality = FhirPersonality(name="plain", paging="offset")

    async def main() -> tuple[list[Any], list[Any]]:
        plain = await _play(_app(personality, fast=False, prefix=prefix), base)
        fast = await _play(_app(personality, fast=True, prefix=prefix), base)
        return plain, fast

    plain, fast = run_virtual(main)
    diffs = []
    for step, (want, got) in enumerate(zip(plain, fast, strict=True)):
        method = SCRIPT[step][0]
        if method == "HEAD":  # served like GET (Starlette's Route, Express); FastAPI's included route says 405
            assert want[0] == 405
            get = fast[step - 1]
            assert SCRIPT[step - 1][:2] == ("GET", SCRIPT[step][1])
            assert (got[0], got[1], got[2]) == (get[0], get[1], b"")
            continue
        if "allow" in got[1]:  # the same methods, plus HEAD wherever GET is
            allowed = set(want[1].pop("allow").split(", "))
            assert set(got[1].pop("allow").split(", ")) == allowed | ({"HEAD"} if "GET" in allowed else set())
        if got != want:
            diffs.append((SCRIPT[step][:2], want, got))
    assert not diffs, "\n".join(map(str, diffs))
    statuses = {status for status, _, _ in plain}
    assert {200, 201, 400, 404, 405, 410} <= statuses, statuses


@pytest.mark.parametrize(("status", "headers", "media_type"), [
    (200, None, "application/fhir+json; charset=utf-8"),
    (201, {"ETag": 'W/"1"', "Location": "http://x/Patient/1"}, "application/fhir+json; charset=utf-8"),
    (200, {"Last-Modified": "Sun, 22 Nov 2026 08:00:00 GMT"}, "application/json"),
    (204, {"ETag": 'W/"2"'}, "application/fhir+json"),
    (304, None, "application/json"),
    (200, {"X-Custom": "1"}, "application/json"),
    (200, {"content-length": "3"}, "application/json"),
    (200, None, "text/plain"),
    (404, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "application/fhir+json"),
])
def test_json_bytes_response_has_starlettes_headers(status: int, headers: dict[str, str] | None,
                                                    media_type: str) -> None:
    body = b'{"a":1}'
    fast = JsonBytesResponse(body, status, headers, media_type)
    plain = Response(body, status_code=status, headers=headers, media_type=media_type)
    assert (fast.status_code, fast.raw_headers, fast.body) == (plain.status_code, plain.raw_headers, plain.body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_dump_json_is_compact_json_dumps(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert dump_json(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=4))
def test_page_link_query_is_urlencode(params: list[tuple[str, str]]) -> None:
    assert _query(params) == urlencode(params)


def _url_based_base(request: Request, segments: int) -> str:
    """`fhir_base` as it was: from Starlette's `request.url`."""
    path = request.url.path.rstrip("/")
    if segments:
        path = path.rsplit("/", segments)[0]
    return f"{request.url.scheme}://{request.url.netloc}{path}"


@settings(max_examples=300, deadline=None)
@given(host=st.none() | st.sampled_from([b"127.0.0.1:8000", b"example.test", b"[::1]:99", b"bad host/x", b"a:b:c",
                                         b"h:99999", b"h:"]) | st.binary(max_size=12),
       server=st.none() | st.sampled_from([("127.0.0.1", 8000), ("::1", 80), ("10.0.0.1", 443)]),
       path=st.from_regex(r"\A/[A-Za-z0-9/?#%\\ $._-]{0,30}\Z"), segments=st.integers(0, 3),
       scheme=st.sampled_from(["http", "https"]))
def test_fhir_base_is_the_request_urls(host: bytes | None, server: tuple[str, int] | None, path: str, segments: int,
                                       scheme: str) -> None:
    scope = {"type": "http", "scheme": scheme, "server": server, "path": path, "query_string": b"a=1",
             "headers": [(b"accept", b"*/*")] + ([] if host is None else [(b"host", host)])}
    try:
        expected: object = _url_based_base(Request(scope), segments)
    except Exception as exc:  # the same failure is what is expected
        expected = type(exc)
    try:
        got: object = fhir_base(Request(scope), segments)
    except Exception as exc:
        got = type(exc)
    assert got == expected


def test_store_caches_follow_every_kind_of_change() -> None:
    async def main() -> None:
        _store_caches_follow_every_kind_of_change()

    run_virtual(main)


def _store_caches_follow_every_kind_of_change() -> None:
    clock = VirtualClock()
    store = store_for(FhirPersonality(name="plain"), clock, random.Random(3))
    first = store.create(patient())
    second = store.create(patient(gender="male"))
    base = "http://x/fhir"

    def page() -> bytes:
        return dump_bundle(searchset(store.search("Patient", copy_results=False), base=base, total=None, links=[]),
                           store.encoded, store.encoded_match)

    def fresh() -> bytes:
        return dump_json(searchset(store.search("Patient"), base=base, total=None, links=[]))

    def check() -> None:
        assert page() == fresh()
        for resource in store.search("Patient", copy_results=False):
            assert store.encoded(resource) == dump_json(resource)
            assert store.encoded_match(f"{base}/Patient/{resource['id']}", resource) == dump_json(
                {"fullUrl": f"{base}/Patient/{resource['id']}", "resource": resource, "search": {"mode": "match"}})

    check()
    store.update({**store.read("Patient", first["id"]), "gender": "other"})
    check()
    store.touch("Patient", second["id"])
    check()
    store.shift_last_updated("Patient", first["id"], -60)
    check()
    store.replace_silently("Patient", second["id"], patient(gender="unknown"))
    check()
    def rolled_back() -> None:
        with store.atomic():
            store.create(patient(gender="female"))
            check()
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        rolled_back()
    check()
    assert len(store.search("Patient")) == 2
    store.delete("Patient", first["id"])
    check()
    assert [r["id"] for r in store.search("Patient", copy_results=False)] == [second["id"]]
    # a caller changing the list it was given does not change the store's
    store.search("Patient", copy_results=False).clear()
    assert len(store.search("Patient", copy_results=False)) == 1
    store.clear()
    check()
    assert store.search("Patient", copy_results=False) == []
