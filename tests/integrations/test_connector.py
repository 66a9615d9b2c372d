"""The connector's interactions, paging safety, breaker wiring and events, against a fake vendor."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

import integrations.fhir
from harness.clock import VirtualClock, run_virtual
from integrations.events import (
    BreakerState,
    BreakerTransitioned,
    IntegrationEvent,
    RequestCompleted,
    RetryScheduled,
    TokenIssued,
    TokenRequestFailed,
)
from integrations.fhir import (
    BreakerConfig,
    CircuitOpen,
    ConnectorError,
    FhirResource,
    MalformedResponse,
    PreconditionFailed,
    RetryPolicy,
    SearchResults,
    ServerError,
)
from tests.integrations.fakes import BASE_URL, CLIENT_SECRET, ORIGIN, FakeVendor, fhir_json, make_kit, outcome, patient


def bundle(ids: list[str], next_url: str | None = None, total: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": patient(pid), "search": {"mode": "match"}} for pid in ids],
        "link": [{"relation": "self", "url": f"{BASE_URL}/Patient"}],
    }
    if next_url is not None:
        body["link"] = [*body["link"], {"relation": "next", "url": next_url}]  # type: ignore[misc]
    if total is not None:
        body["total"] = total
    return body


def test_read_returns_a_typed_resource() -> None:
    async def main() -> tuple[FhirResource, httpx.URL, httpx.Headers]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: fhir_json(200, patient("p1", "7"), {"ETag": 'W/"7"'}))
        kit = make_kit(vendor)
        async with kit.connector as connector:
            result = await connector.read("Patient", "p1")
        await kit.breaker.aclose()
        return result, vendor.requests[0].url, vendor.requests[0].headers

    result, url, headers = run_virtual(main)
    assert (result.resource_type, result.id, result.version_id, result.etag) == ("Patient", "p1", "7", 'W/"7"')
    assert result.body["name"] == [{"family": "Doe", "given": ["Jane"]}]
    assert "Doe" not in repr(result)
    assert str(url) == f"{BASE_URL}/Patient/p1"
    assert headers["accept"] == "application/fhir+json"


@pytest.mark.parametrize(("resource_type", "resource_id"), [("Patient", "../admin"), ("patient", "p1"),
                                                            ("Patient", "a" * 65), ("Patient", "")])
def test_invalid_type_or_id_is_refused_before_sending(resource_type: str, resource_id: str) -> None:
    async def main() -> int:
        kit = make_kit()
        with pytest.raises(ValueError, match="FHIR"):
            await kit.connector.read(resource_type, resource_id)
        await kit.close()
        return len(kit.vendor.requests)

    assert run_virtual(main) == 0


def test_correlation_ids_one_per_call_and_reproducible_from_the_seed() -> None:
    def ids(seed: int) -> list[str]:
        async def main() -> list[str]:
            kit = make_kit(seed=seed)
            for _ in range(3):
                await kit.connector.read("Patient", "p1")
            await kit.close()
            return [r.headers["x-correlation-id"] for r in kit.vendor.requests]

        return run_virtual(main)

    first = ids(42)
    assert len(set(first)) == 3
    assert ids(42) == first
    assert ids(43) != first


def test_request_events_carry_the_path_only_and_the_clock_duration() -> None:
    async def main() -> list[RequestCompleted]:
        clock = VirtualClock()

        async def slow(request: httpx.Request) -> httpx.Response:
            await clock.sleep(2.5)
            return fhir_json(200, bundle(["p1"]))

        vendor = FakeVendor(clock)
        vendor.script.append(slow)
        kit = make_kit(vendor)
        await kit.connector.search("Patient", {"family": "Doe", "birthdate": ["ge1970", "le1980"]})
        await kit.close()
        assert "family=Doe" in str(vendor.requests[0].url)
        assert vendor.requests[0].url.params.get_list("birthdate") == ["ge1970", "le1980"]
        return [e for e in kit.of(RequestCompleted) if isinstance(e, RequestCompleted)]

    (event,) = run_virtual(main)
    assert event.path == "/fhir/R4/Patient"
    assert "Doe" not in repr(event)
    assert (event.method, event.status, event.duration_s, event.attempt, event.error) == ("GET", 200, 2.5, 1, None)


def test_search_returns_a_page_with_outcomes_apart() -> None:
    async def main() -> integrations.fhir.BundlePage:
        body = bundle(["p1", "p2"], total=2)
        body["entry"] = [*body["entry"], {  # type: ignore[misc]
            "resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "4101"}]},
            "search": {"mode": "outcome"}}]
        vendor = FakeVendor(VirtualClock(), default=lambda r: fhir_json(200, body))
        kit = make_kit(vendor)
        page = await kit.connector.search("Patient", {"_id": "p1,p2"})
        await kit.close()
        return page

    page = run_virtual(main)
    assert [r.id for r in page.resources] == ["p1", "p2"]
    assert len(page.outcomes) == 1
    assert page.total == 2
    assert page.next_url is None


def test_search_all_follows_same_origin_next_links() -> None:
    async def main() -> tuple[SearchResults, list[str]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.extend([
            lambda r: fhir_json(200, bundle(["p1", "p2"], f"{BASE_URL}/Patient?_count=2&_offset=2")),
            lambda r: fhir_json(200, bundle(["p3", "p4"], "Patient?_count=2&_offset=4")),  # relative link
            lambda r: fhir_json(200, bundle(["p5"], f"{ORIGIN}:443/fhir/R4/Patient?_count=2&_offset=6")),
            lambda r: fhir_json(200, bundle(["p6"])),
        ])
        kit = make_kit(vendor)
        results = await kit.connector.search_all("Patient", {"_count": "2"})
        await kit.close()
        return results, [str(r.url) for r in vendor.requests]

    results, urls = run_virtual(main)
    assert [r.id for r in results.resources] == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert (results.pages, results.complete) == (4, True)
    assert urls[1:] == [f"{BASE_URL}/Patient?_count=2&_offset=2", f"{BASE_URL}/Patient?_count=2&_offset=4",
                        f"{BASE_URL}/Patient?_count=2&_offset=6"]


@pytest.mark.parametrize("foreign", [
    "https://evil.example/fhir/R4/Patient?page=2",
    "http://ehr.example.test/fhir/R4/Patient?page=2",  # same host, another scheme
    "https://ehr.example.test:8443/fhir/R4/Patient?page=2",  # same host, another port
    "https://user:pw@ehr.example.test/fhir/R4/Patient?page=2",
    "//evil.example/fhir/R4/Patient",
])
def test_search_all_refuses_a_next_link_to_another_origin(foreign: str) -> None:
    async def main() -> tuple[MalformedResponse, list[httpx.URL]]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: fhir_json(200, bundle(["p1"], foreign)))
        kit = make_kit(vendor)
        with pytest.raises(MalformedResponse) as caught:
            await kit.connector.search_all("Patient", {"name": "x"})
        await kit.close()
        return caught.value, [r.url for r in vendor.token_requests + vendor.requests]  # everything sent

    error, sent = run_virtual(main)
    assert "another origin" in str(error)
    assert "page=2" not in str(error)
    assert [(url.host, url.port, url.path) for url in sent] == [
        ("ehr.example.test", None, "/oauth2/token"), ("ehr.example.test", None, "/fhir/R4/Patient")]


def test_search_all_stops_at_max_pages_and_on_loops() -> None:
    async def main() -> tuple[SearchResults, MalformedResponse]:
        loop_url = f"{BASE_URL}/Patient?page=2"
        vendor = FakeVendor(VirtualClock(), default=lambda r: fhir_json(200, bundle(["p1"], loop_url)))
        kit = make_kit(vendor)
        limited = await kit.connector.search_all("Patient", max_pages=2)
        with pytest.raises(MalformedResponse) as caught:
            await kit.connector.search_all("Patient", max_pages=10)
        await kit.close()
        return limited, caught.value

    limited, loop = run_virtual(main)
    assert (limited.pages, limited.complete, len(limited.resources)) == (2, False, 2)
    assert "repeats" in str(loop)


def test_create_and_conditional_update() -> None:
    async def main() -> tuple[FhirResource, FhirResource, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def created(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            body = json.loads(request.content) | {"id": "o1", "meta": {"versionId": "1"}}
            return fhir_json(201, body, {"ETag": 'W/"1"', "Location": f"{BASE_URL}/Observation/o1/_history/1"})

        def updated(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, headers={"ETag": 'W/"4"'})  # Prefer: return=minimal server

        vendor = FakeVendor(VirtualClock())
        vendor.script.extend([created, updated])
        kit = make_kit(vendor)
        obs = await kit.connector.create({"resourceType": "Observation", "status": "final"})
        pat = await kit.connector.update(patient("p1", "3"), if_match="3")
        await kit.close()
        return obs, pat, seen

    obs, pat, (post, put) = run_virtual(main)
    assert (obs.id, obs.version_id) == ("o1", "1")
    assert post.method == "POST"
    assert post.url.path == "/fhir/R4/Observation"
    assert post.headers["content-type"] == "application/fhir+json"
    assert "if-none-exist" not in post.headers
    assert (put.method, put.url.path, put.headers["if-match"]) == ("PUT", "/fhir/R4/Patient/p1", 'W/"3"')
    assert (pat.id, pat.version_id, pat.etag) == ("p1", "4", 'W/"4"')


def test_update_with_a_stale_version_is_precondition_failed() -> None:
    async def main() -> PreconditionFailed:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(412, "processing", "Precondition Failed"))
        kit = make_kit(vendor)
        with pytest.raises(PreconditionFailed) as caught:
            await kit.connector.update(patient("p1"), if_match='W/"2"')
        await kit.close()
        assert vendor.requests[0].headers["if-match"] == 'W/"2"'
        return caught.value

    assert run_virtual(main).status == 412


def test_outage_opens_the_breaker_then_calls_fail_fast_without_requests() -> None:
    async def main() -> tuple[int, int, list[tuple[float, BreakerState]], CircuitOpen]:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(503, "transient", "down"))
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=1))
        for _ in range(10):
            with pytest.raises(ServerError):
                await kit.connector.read("Patient", "p1")
        sent = len(vendor.requests)
        with pytest.raises(CircuitOpen) as caught:
            await kit.connector.read("Patient", "p1")
        vendor.default = lambda r: fhir_json(200, patient())
        await kit.clock.sleep(60)
        for _ in range(3):
            await kit.connector.read("Patient", "p1")
        await kit.close()
        transitions = [(t, e.to_state) for t, e in kit.events if isinstance(e, BreakerTransitioned)]
        return sent, len(vendor.requests), transitions, caught.value

    sent, total, transitions, error = run_virtual(main)
    assert sent == 10
    assert total == 13  # nothing was sent while OPEN
    assert transitions == [(0.0, BreakerState.OPEN), (60.0, BreakerState.HALF_OPEN), (60.0, BreakerState.CLOSED)]
    assert error.correlation_id is not None


def test_client_errors_do_not_open_the_breaker() -> None:
    async def main() -> BreakerState:
        vendor = FakeVendor(VirtualClock(), default=lambda r: outcome(404, "not-found", "Not found"))
        kit = make_kit(vendor)
        for _ in range(30):
            with pytest.raises(ConnectorError):
                await kit.connector.read("Patient", "p1")
        await kit.close()
        return kit.breaker.state

    assert run_virtual(main) is BreakerState.CLOSED


def test_a_cancelled_half_open_trial_gives_its_permit_back() -> None:
    async def main() -> BreakerState:
        clock = VirtualClock()

        async def hang(request: httpx.Request) -> httpx.Response:
            await clock.sleep(5)
            return fhir_json(200, patient())

        vendor = FakeVendor(clock)
        kit = make_kit(vendor, breaker=BreakerConfig(permitted_half_open_calls=1))
        kit.breaker.transition_to(BreakerState.HALF_OPEN)
        vendor.script.append(hang)
        task = asyncio.create_task(kit.connector.read("Patient", "p1"))
        await clock.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await kit.connector.read("Patient", "p1")  # the slot is free again
        await kit.close()
        return kit.breaker.state

    assert run_virtual(main) is BreakerState.CLOSED


def test_no_token_or_secret_in_events_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> tuple[list[IntegrationEvent], list[BaseException], FakeVendor]:
        clock = VirtualClock()
        vendor = FakeVendor(clock, default=lambda r: outcome(503, "transient", "down"))
        vendor.token_failures.append(httpx.Response(400, json={"error": "invalid_client",
                                                               "error_description": CLIENT_SECRET}))
        kit = make_kit(vendor, breaker=BreakerConfig(minimum_calls=3))
        errors: list[BaseException] = []
        for _ in range(6):
            try:
                await kit.connector.read("Patient", "p1")
            except ConnectorError as exc:
                errors.append(exc)
            await clock.sleep(30)
        vendor.reject_tokens = 2
        vendor.default = lambda r: fhir_json(200, patient())
        await clock.sleep(3600)
        try:
            await kit.connector.read("Patient", "p1")
        except ConnectorError as exc:
            errors.append(exc)
        await kit.close()
        return [e for _, e in kit.events], errors, vendor

    events, errors, vendor = run_virtual(main)
    secrets = [CLIENT_SECRET, *vendor.tokens]
    assert len(secrets) >= 3  # the secret and at least two issued tokens: the check below has teeth
    kinds = {type(e) for e in events}
    assert {RequestCompleted, RetryScheduled, BreakerTransitioned, TokenIssued, TokenRequestFailed} <= kinds
    texts = [repr(e) for e in events] + [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [caplog.text] + [record.getMessage() for record in caplog.records]
    assert caplog.records  # something was logged
    for secret in secrets:
        assert not [text for text in texts if secret in text]


def test_public_api_is_exported() -> None:
    assert set(integrations.fhir.__all__) == {
        "CORRELATION_HEADER", "AccessToken", "AuthError", "BreakerConfig", "BundlePage", "CircuitBreaker",
        "CircuitOpen", "ClientAuthMethod", "ClientCredentials", "ClientCredentialsAuth", "ClientSecretBasic",
        "ClientSecretPost", "Conflict", "ConnectionFailed", "ConnectorError", "CredentialsProvider",
        "FhirConnector", "FhirResource", "Forbidden", "JsonObject", "JsonValue", "MalformedResponse", "NotFound",
        "OutcomeIssue", "Permit", "PrivateKeyJwt", "JWT_BEARER", "PreconditionFailed", "RateLimited",
        "RequestTimeout", "RetryPolicy",
        "SearchParams", "SearchResults", "ServerError", "TokenCache", "UnexpectedStatus", "ValidationFailed",
        "parse_retry_after", "provider_failure", "retry_safe",
        # auth (issue 5): rotating credentials, start-up validation, the Unity flow
        "CallableCredentials", "ConfigurationError", "CredentialSource", "CredentialsRejected", "EnvCredentials",
        "FileCredentials", "RotatingCredentials", "SigningKeyCredentials", "StaticCredentials", "TokenFlow",
        "UnityCallFailed", "UnityClient", "UnityTokenAuth", "VendorAuthConfig", "validate_auth_config",
    }
    for name in integrations.fhir.__all__:
        assert getattr(integrations.fhir, name) is not None
