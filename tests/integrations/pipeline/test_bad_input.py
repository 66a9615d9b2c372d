"""Bad input from a vendor becomes a typed error or a handled case, never an unhandled exception.

Unit tests of the connector against `httpx.MockTransport` (the fake vendor of `tests/integrations/fakes.py`):
non-JSON and truncated bodies, JSON nested deeper than the parser's recursion limit, wrong
`resourceType`, a 200 that carries an OperationOutcome, a Bundle without `entry`, `next` links to
other origins, a token response without `expires_in`; then a property test that throws arbitrary
bodies at `read` and `search_all`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.clock import VirtualClock, run_virtual
from integrations.events import RequestCompleted, TokenIssued
from integrations.fhir import ConnectorError, MalformedResponse, RetryPolicy, SearchResults
from tests.integrations.fakes import BASE_URL, ORIGIN, FakeVendor, fhir_json, make_kit, patient

Answer = Callable[[httpx.Request], httpx.Response]

OPERATION_OUTCOME = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "processing", "details": {"text": "Search could not be completed"}}]}


def _bundle(ids: list[str], next_url: str | None = None) -> dict[str, object]:
    links = [{"relation": "self", "url": f"{BASE_URL}/Patient"}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {"resourceType": "Bundle", "type": "searchset", "link": links,
            "entry": [{"resource": patient(pid), "search": {"mode": "match"}} for pid in ids]}


def _outcome_of(call: str, answers: Sequence[Answer]) -> tuple[object, FakeVendor]:
    """Run `read` or `search_all` against a vendor answering `answers` in order; the result or the error."""
    async def main() -> tuple[object, FakeVendor]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.extend(answers)
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=1))
        try:
            if call == "read":
                return await kit.connector.read("Patient", "p1"), vendor
            return await kit.connector.search_all("Patient"), vendor
        except ConnectorError as error:
            return error, vendor
        finally:
            await kit.close()

    return run_virtual(main)


def _raw(content: bytes) -> Answer:
    return lambda request: httpx.Response(200, content=content, headers={"Content-Type": "application/fhir+json"})


def _json(body: object) -> Answer:
    return lambda request: fhir_json(200, body)


@pytest.mark.parametrize(("call", "answer", "fragment"), [
    ("read", _raw(b"<html><body>Service maintenance</body></html>"), "not a JSON object"),
    ("read", _raw(b'{"resourceType": "Patient", "id": "p1", "name": [{"fam'), "not a JSON object"),  # truncated
    ("read", _raw(b"[" * 100_000 + b"]" * 100_000), "not a JSON object"),  # RecursionError in json.loads
    ("read", _raw(b'{"resourceType": "Patient", "id": "p1", "name": "\xff\xfe"}'), "not a JSON object"),  # bad UTF-8
    ("read", _json({"resourceType": "Practitioner", "id": "p1"}), "expected a Patient, got a Practitioner"),
    ("read", _json(OPERATION_OUTCOME), "OperationOutcome where a Patient was expected (processing: Search"),
    ("search", _json(OPERATION_OUTCOME), "OperationOutcome where a Bundle was expected (processing: Search"),
    ("search", _json({"resourceType": "Patient", "id": "p1"}), "expected a Bundle"),
    ("search", _json({"resourceType": "Bundle", "entry": {"resource": patient()}}), "Bundle.entry is not a list"),
    ("search", _json({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}), "entry without a resource"),
    ("search", _raw(b'{"resourceType": "Bundle", "entry": [{"resource": '), "not a JSON object"),
])
def test_a_bad_body_is_a_malformed_response_naming_what_was_wrong(call: str, answer: Answer, fragment: str) -> None:
    error, vendor = _outcome_of(call, [answer])
    assert type(error) is MalformedResponse, repr(error)
    assert error.status == 200
    assert error.correlation_id == vendor.requests[0].headers["x-correlation-id"]
    assert fragment in str(error)
    assert "p1" not in error.message  # nothing of the body but an OperationOutcome's issue
    assert "maintenance" not in str(error)


def test_a_200_operation_outcome_keeps_its_issues() -> None:
    error, _ = _outcome_of("search", [_json(OPERATION_OUTCOME)])
    assert isinstance(error, MalformedResponse)
    assert [(i.severity, i.code, i.text) for i in error.issues] == [
        ("error", "processing", "Search could not be completed")]


def test_a_bundle_without_entry_is_an_empty_result() -> None:
    result, _ = _outcome_of("search", [_json({"resourceType": "Bundle", "type": "searchset", "total": 0})])
    assert result == SearchResults(resources=(), pages=1, complete=True)


@pytest.mark.parametrize("link", [
    "https://evil.example.test/fhir/R4/Patient?page=2",
    "https://ehr.example.test.evil.test/fhir/R4/Patient?page=2",  # the base host as a prefix
    "http://ehr.example.test/fhir/R4/Patient?page=2",  # scheme downgrade
    "https://ehr.example.test:8443/fhir/R4/Patient?page=2",
    "https://user:pw@ehr.example.test/fhir/R4/Patient?page=2",
    "//evil.example.test/fhir/R4/Patient?page=2",  # scheme-relative
    "https://ehr.example.test:443:443/fhir/R4/Patient?page=2",  # HAPI's doubled port (vendors.md, known problems)
    "https://[::1/fhir",
])
def test_a_next_link_off_the_base_origin_is_refused_before_any_request(link: str) -> None:
    error, vendor = _outcome_of("search", [_json(_bundle(["p1"], link))])
    assert type(error) is MalformedResponse
    assert len(vendor.requests) == 1  # the first page only: the token never went to the link
    assert all(f"{r.url.scheme}://{r.url.netloc.decode()}" == ORIGIN for r in vendor.requests + vendor.token_requests)


@pytest.mark.parametrize("link", ["Patient?page=2", f"{ORIGIN}:443/fhir/R4/Patient?page=2", "/fhir/R4/Patient?page=2"])
def test_same_origin_next_links_relative_or_with_the_default_port_are_followed(link: str) -> None:
    result, vendor = _outcome_of("search", [_json(_bundle(["p1"], link)), _json(_bundle(["p2"]))])
    assert isinstance(result, SearchResults)
    assert [r.id for r in result.resources] == ["p1", "p2"]
    assert str(vendor.requests[1].url) == f"{BASE_URL}/Patient?page=2"


def test_a_resource_repeated_on_a_later_page_is_counted_as_a_duplicate() -> None:
    result, _ = _outcome_of("search", [_json(_bundle(["p1", "p2"], f"{BASE_URL}/Patient?page=2")),
                                       _json(_bundle(["p2", "p3"]))])
    assert isinstance(result, SearchResults)
    assert [r.id for r in result.resources] == ["p1", "p2", "p2", "p3"]  # as the server sent them
    assert result.duplicates == 1


def test_a_token_response_without_expires_in_is_used_with_the_default_lifetime() -> None:
    async def main() -> tuple[list[object], int, int]:
        clock = VirtualClock()
        vendor = FakeVendor(clock)
        vendor.token_failures.append(httpx.Response(200, json={"access_token": "tok-no-expiry",
                                                               "token_type": "Bearer"}))
        vendor.tokens["tok-no-expiry"] = 10_000.0
        kit = make_kit(vendor)
        await kit.connector.read("Patient", "p1")
        await clock.sleep(200)
        await kit.connector.read("Patient", "p1")
        before = len(vendor.token_requests)
        await clock.sleep(60)  # 260 s: inside the 60 s margin before the assumed 300 s expiry
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return kit.of(TokenIssued), before, len(vendor.token_requests)

    issued, before, after = run_virtual(main)
    assert next(e.expires_in_s for e in issued if isinstance(e, TokenIssued)) == 300.0
    assert (before, after) == (1, 2)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12)
_links = st.sampled_from(["Patient?page=2", "https://evil.test/x", "::", "", f"{BASE_URL}/Patient?page=3", 7])
_entries = st.lists(st.one_of(
    _json_values,
    st.fixed_dictionaries({"resource": st.one_of(_json_values, st.fixed_dictionaries(
        {"resourceType": st.sampled_from(["Patient", "OperationOutcome", "x"]), "id": _json_values | st.just("p9")})),
        "search": st.one_of(_json_values, st.fixed_dictionaries({"mode": st.sampled_from(["match", "outcome"])}))})),
    max_size=3)
_bodies = st.one_of(
    st.binary(max_size=64).map(lambda b: (200, b)),
    st.fixed_dictionaries(
        {"resourceType": st.sampled_from(["Bundle", "Patient", "OperationOutcome", "bundle"])},
        optional={"id": _json_values | st.just("p1"), "entry": _entries | _json_values,
                  "link": st.lists(st.fixed_dictionaries({"relation": st.sampled_from(["next", "self", 3]),
                                                          "url": _links}), max_size=2) | _json_values,
                  "total": _json_values, "meta": _json_values, "issue": _json_values},
    ).map(lambda body: (200, json.dumps(body).encode())),
    st.tuples(st.sampled_from([200, 201, 204, 302, 400, 404, 410, 412, 429, 500, 503]),
              st.binary(max_size=32)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=st.sampled_from(["read", "search"]), first=_bodies, second=_bodies)
def test_no_body_from_the_vendor_escapes_as_anything_but_a_connector_error(
        call: str, first: tuple[int, bytes], second: tuple[int, bytes]) -> None:
    answers = [lambda r, a=answer: httpx.Response(a[0], content=a[1]) for answer in (first, second)]
    result, vendor = _outcome_of(call, answers)  # anything else propagates and fails the test
    assert isinstance(result, ConnectorError | SearchResults) or getattr(result, "id", None) == "p1"
    assert all(r.url.host == "ehr.example.test" for r in vendor.requests)


def test_every_attempt_on_bad_input_is_journaled_as_malformed() -> None:
    async def main() -> list[RequestCompleted]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.append(_raw(b"{not json"))
        kit = make_kit(vendor)
        with pytest.raises(MalformedResponse):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        return [e for e in kit.of(RequestCompleted) if isinstance(e, RequestCompleted)]

    (event,) = run_virtual(main)  # a malformed 200 is not retried: the same request would get the same body
    assert (event.status, event.error) == (200, "MalformedResponse")
