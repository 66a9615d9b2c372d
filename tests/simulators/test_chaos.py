"""The chaos middleware and its admin API, through a Medplum simulator in process on virtual time."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from harness.clock import VirtualClock, run_virtual
from simulators.chaos import ChaosMiddleware, ChaosState, ErrorRate, Latency, Outage
from simulators.errors import ConnectionDropped
from tests.simulators.support import ADMIN, bearer, client_for, get_token, make_medplum


async def _put(client: httpx.AsyncClient, fault: str, body: dict[str, Any]) -> httpx.Response:
    response = await client.put(f"/admin/chaos/{fault}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response


def test_outage_status_answers_every_call_including_healthcheck() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = await get_token(client)
            state = (await _put(client, "outage", {"mode": "status", "status": 503})).json()
            assert state["outage"] == {"mode": "status", "status": 503}
            for call in (client.get("/healthcheck"), client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token)),
                         client.post("/oauth2/token", data={"grant_type": "client_credentials"})):
                response = await call
                assert response.status_code == 503
                assert response.headers["content-type"].startswith("application/fhir+json")
                outcome = response.json()
                assert outcome["resourceType"] == "OperationOutcome"
                assert outcome["issue"][0]["code"] == "transient"
            # the admin API is exempt, so the outage can be ended
            assert (await client.get("/admin/chaos", headers=ADMIN)).json()["injected"]["outage"] == 3
            cleared = await client.delete("/admin/chaos/outage", headers=ADMIN)
            assert cleared.status_code == 200
            assert cleared.json()["outage"] is None
            assert (await client.get("/healthcheck")).status_code == 200

    run_virtual(main)


def test_outage_with_another_status() -> None:
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            await _put(client, "outage", {"status": 502})
            response = await client.get("/healthcheck")
            assert response.status_code == 502
            assert response.json()["issue"][0]["code"] == "transient"

    run_virtual(main)


def test_outage_drop_is_a_transport_error_not_a_response() -> None:
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            await _put(client, "outage", {"mode": "drop"})
            with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected without sending a response"):
                await client.get("/healthcheck")
            await client.delete("/admin/chaos/outage", headers=ADMIN)
            assert (await client.get("/healthcheck")).status_code == 200

    run_virtual(main)


def test_latency_is_slept_on_the_clock_within_bounds() -> None:
    clock = VirtualClock()

    async def main() -> list[float]:
        sim = make_medplum(clock=clock)
        async with client_for(sim) as client:
            await _put(client, "latency", {"min_ms": 500, "max_ms": 2000})
            delays = []
            for _ in range(50):
                start = clock.monotonic()
                assert (await client.get("/healthcheck")).status_code == 200
                delays.append(clock.monotonic() - start)
            await client.delete("/admin/chaos/latency", headers=ADMIN)
            start = clock.monotonic()
            await client.get("/healthcheck")
            assert clock.monotonic() - start == pytest.approx(0.0, abs=1e-6)
            return delays

    delays = run_virtual(main)
    assert all(0.5 - 1e-6 <= d <= 2.0 + 1e-6 for d in delays), delays
    assert max(delays) - min(delays) > 0.5  # uniform, not a constant
    assert 1.0 < sum(delays) / len(delays) < 1.5  # mean of U(0.5, 2.0) is 1.25


def test_admin_calls_are_not_delayed() -> None:
    clock = VirtualClock()

    async def main() -> float:
        sim = make_medplum(clock=clock)
        async with client_for(sim) as client:
            await _put(client, "latency", {"min_ms": 5000, "max_ms": 5000})
            start = clock.monotonic()
            await client.get("/admin/chaos", headers=ADMIN)
            return clock.monotonic() - start

    assert run_virtual(main) == pytest.approx(0.0, abs=1e-6)


def test_error_rate_fails_about_p_of_calls() -> None:
    async def main() -> tuple[int, int]:
        sim = make_medplum(seed=11)
        async with client_for(sim) as client:
            await _put(client, "error-rate", {"probability": 0.3})
            statuses = [(await client.get("/healthcheck")).status_code for _ in range(1000)]
            state = (await client.get("/admin/chaos", headers=ADMIN)).json()
            assert set(statuses) == {200, 500}
            return statuses.count(500), state["injected"]["error_rate"]

    failures, counted = run_virtual(main)
    assert 250 <= failures <= 350  # p=0.3 over 1000: mean 300, sd ~14.5
    assert counted == failures


@pytest.mark.parametrize(("probability", "expected"), [(0.0, 200), (1.0, 429)])
def test_error_rate_extremes(probability: float, expected: int) -> None:
    async def main() -> set[int]:
        sim = make_medplum()
        async with client_for(sim) as client:
            await _put(client, "error-rate", {"probability": probability, "status": 429})
            responses = [await client.get("/healthcheck") for _ in range(20)]
            if expected == 429:
                assert responses[0].json()["issue"][0]["code"] == "throttled"
            return {r.status_code for r in responses}

    assert run_virtual(main) == {expected}


def test_clear_all_stops_every_fault() -> None:
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            await _put(client, "latency", {"min_ms": 10, "max_ms": 20})
            await _put(client, "error-rate", {"probability": 1.0})
            await _put(client, "outage", {"mode": "drop"})
            cleared = await client.delete("/admin/chaos", headers=ADMIN)
            assert cleared.status_code == 200
            body = cleared.json()
            assert (body["outage"], body["latency"], body["error_rate"]) == (None, None, None)
            assert sim.chaos.outage is None
            assert (await client.get("/healthcheck")).status_code == 200

    run_virtual(main)


def test_get_state_reports_every_fault() -> None:
    async def main() -> dict[str, Any]:
        sim = make_medplum()
        async with client_for(sim) as client:
            await _put(client, "latency", {"min_ms": 500, "max_ms": 2000})
            await _put(client, "error-rate", {"probability": 0.25, "status": 503})
            response = await client.get("/admin/chaos", headers=ADMIN)
            assert response.status_code == 200
            return dict(response.json())

    state = run_virtual(main)
    assert state["outage"] is None
    assert state["latency"] == {"min_ms": 500, "max_ms": 2000}
    assert state["error_rate"] == {"probability": 0.25, "status": 503}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/chaos"), ("DELETE", "/admin/chaos"),
                                              ("PUT", "/admin/chaos/outage"), ("DELETE", "/admin/chaos/latency")])
def test_admin_api_needs_the_admin_token(headers: dict[str, str], method: str, path: str) -> None:
    async def main() -> httpx.Response:
        sim = make_medplum()
        async with client_for(sim) as client:
            # a body that would be valid, and one field that is not: auth is checked first either way
            response = await client.request(method, path, headers=headers, json={"mode": "drop", "x": 1})
            assert sim.chaos.outage is None
            return response

    response = run_virtual(main)
    assert response.status_code == 401
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"


@pytest.mark.parametrize(("fault", "body"), [
    ("latency", {"min_ms": 2000, "max_ms": 500}),
    ("latency", {"min_ms": -1, "max_ms": 500}),
    ("latency", {"min_ms": 1}),
    ("latency", {"min_ms": "soon", "max_ms": 5}),
    ("error-rate", {"probability": 1.5}),
    ("error-rate", {"probability": -0.1}),
    ("error-rate", {"probability": 0.5, "status": 600}),
    ("error-rate", {"probability": 0.5, "status": 399}),
    ("error-rate", {"probabilty": 0.5}),
    ("outage", {"mode": "explode"}),
    ("outage", {"status": 200}),
    ("outage", ["drop"]),
])
def test_bad_admin_bodies_are_400_operation_outcomes(fault: str, body: object) -> None:
    async def main() -> httpx.Response:
        sim = make_medplum()
        async with client_for(sim) as client:
            response = await client.put(f"/admin/chaos/{fault}", json=body, headers=ADMIN)
            assert sim.chaos.to_json()["outage"] is None
            assert sim.chaos.latency is None
            assert sim.chaos.error_rate is None
            return response

    response = run_virtual(main)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"


@pytest.mark.parametrize(("content", "content_type"), [(b"{not json", "application/json"), (b"", "application/json"),
                                                       (b'{"mode": "drop"}', "text/plain")])
def test_unparsable_admin_bodies_are_4xx(content: bytes, content_type: str) -> None:
    async def main() -> httpx.Response:
        sim = make_medplum()
        async with client_for(sim) as client:
            return await client.put("/admin/chaos/outage", content=content,
                                    headers={**ADMIN, "Content-Type": content_type})

    response = run_virtual(main)
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"


# -- the middleware on its own -----------------------------------------------------------------


async def _ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _call(app: ChaosMiddleware, path: str) -> int:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}, receive, send)
    return int(sent[0]["status"])


def test_exempt_prefix_matches_whole_segments_only() -> None:
    state = ChaosState(outage=Outage(status=503))
    app = ChaosMiddleware(_ok_app, state, VirtualClock(), random.Random(0), exempt_prefixes=("/admin/",))

    async def main() -> list[int]:
        return [await _call(app, path) for path in ("/admin", "/admin/chaos", "/administrator", "/x/admin")]

    assert run_virtual(main) == [200, 200, 503, 503]


def test_outage_comes_before_latency_and_error_rate() -> None:
    clock = VirtualClock()
    state = ChaosState(outage=Outage(mode="drop"), latency=Latency(min_ms=1000, max_ms=1000),
                       error_rate=ErrorRate(probability=1.0))
    app = ChaosMiddleware(_ok_app, state, clock, random.Random(0))

    async def main() -> float:
        with pytest.raises(ConnectionDropped):
            await _call(app, "/fhir/R4/Patient")
        return clock.monotonic()

    assert run_virtual(main) == 0.0
    assert (state.injected.outage, state.injected.latency, state.injected.error_rate) == (1, 0, 0)


def test_faults_that_are_off_draw_no_randomness() -> None:
    rng = random.Random(5)
    before = rng.getstate()
    app = ChaosMiddleware(_ok_app, ChaosState(), VirtualClock(), rng)

    async def main() -> int:
        return await _call(app, "/healthcheck")

    assert run_virtual(main) == 200
    assert rng.getstate() == before


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = ChaosMiddleware(app, ChaosState(outage=Outage(mode="drop")), VirtualClock(), random.Random(0))

    async def main() -> None:
        async def receive() -> Message:
            return {"type": "lifespan.startup"}

        async def send(message: Message) -> None:
            return None

        await middleware({"type": "lifespan"}, receive, send)

    run_virtual(main)
    assert seen == ["lifespan"]


def test_empty_admin_token_is_refused() -> None:
    from simulators.chaos import chaos_admin_router

    with pytest.raises(ValueError, match="admin_token"):
        chaos_admin_router(ChaosState(), "")
