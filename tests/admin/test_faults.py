"""Every chaos fault kind, scoping, several faults at once, ids, in process on virtual time."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.admin.faults import ChaosState, ErrorRate, FaultScope, Outage
from tests.admin.support import (
    ADMIN,
    BIG_ITEMS,
    CLIENT_A,
    CLIENT_B,
    SECRET_B,
    bearer,
    client_for,
    get_token,
    make_mini,
    patient,
    put_fault,
)


async def _state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/admin/chaos", headers=ADMIN)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_each_put_returns_a_distinct_id_and_delete_by_id_stops_only_that_fault() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            ping = await put_fault(client, "outage", {"status": 502, "scope": {"path": "/ping"}})
            big = await put_fault(client, "outage", {"status": 504, "scope": {"path": "/big"}})
            assert ping != big
            assert [f["id"] for f in (await _state(client))["faults"]] == [ping, big]
            assert (await client.get("/ping")).status_code == 502
            assert (await client.get("/big")).status_code == 504
            one = await client.get(f"/admin/chaos/faults/{ping}", headers=ADMIN)
            assert one.json()["scope"] == {"path": "/ping"}
            assert one.json()["injected"] == 1
            deleted = await client.delete(f"/admin/chaos/faults/{ping}", headers=ADMIN)
            assert deleted.status_code == 200
            assert (await client.get("/ping")).status_code == 200
            assert (await client.get("/big")).status_code == 504
            again = await client.delete(f"/admin/chaos/faults/{ping}", headers=ADMIN)
            assert again.status_code == 404
            assert again.json()["resourceType"] == "OperationOutcome"

    run_virtual(main)


def test_same_kind_and_scope_replaces_other_scopes_coexist_and_delete_by_kind_stops_all() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "outage", {"status": 500})
            second = await put_fault(client, "outage", {"status": 503})
            await put_fault(client, "outage", {"status": 502, "scope": {"method": "POST"}})
            state = await _state(client)
            assert next((f["id"], f["status"]) for f in state["faults"]) == (second, 503)
            assert len(state["faults"]) == 2
            assert (await client.post("/ping")).status_code == 502  # the newest matching outage
            assert (await client.get("/ping")).status_code == 503
            await client.delete("/admin/chaos/outage", headers=ADMIN)
            assert (await _state(client))["faults"] == []
            assert (await client.get("/ping")).status_code == 200

    run_virtual(main)


@pytest.mark.parametrize(("scope", "expected"), [
    ({"path": "/fhir/Patient"}, {"/fhir/Patient/x": 503, "/fhir/PatientX/x": 401, "/ping": 200}),
    ({"path": "/fhir/Patient/"}, {"/fhir/Patient/x": 503, "/fhir/Observation/x": 401, "/ping": 200}),
    ({"method": "post"}, {"/fhir/Patient/x": 401, "/ping": 200, "POST /ping": 503}),
    ({"path": "/ping", "method": "GET"}, {"/ping": 503, "POST /ping": 200, "/big": 200}),
    ({"path": "/"}, {"/ping": 503, "/big": 503}),
])
def test_path_and_method_scopes(scope: dict[str, str], expected: dict[str, int]) -> None:
    async def main() -> dict[str, int]:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "outage", {"scope": scope})
            seen = {}
            for target in expected:
                method, _, path = target.rpartition(" ")
                seen[target] = (await client.request(method or "GET", path)).status_code
            return seen

    assert run_virtual(main) == expected


def test_client_scope_hits_only_that_clients_calls() -> None:
    async def main() -> None:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token_a = await get_token(client)
            token_b = await get_token(client, CLIENT_B, SECRET_B)
            await put_fault(client, "error-rate",
                            {"probability": 1.0, "statuses": [429], "scope": {"client_id": CLIENT_B}})
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token_a))).status_code == 200
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token_b))).status_code == 429
            assert (await client.get("/ping")).status_code == 200  # no client: not in scope
            entries = (await client.get("/admin/requests", headers=ADMIN, params={"faulted": "true"})).json()
            assert [(e["client"], e["status"], e["faults"]) for e in entries["entries"]] == [
                (CLIENT_B, 429, ["error-rate"])]

    run_virtual(main)


def test_fail_next_fails_n_matching_calls_then_ends() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            fault_id = await put_fault(client, "fail-next", {"count": 3, "status": 500, "scope": {"path": "/ping"}})
            assert (await client.get("/big")).status_code == 200  # out of scope: does not count
            assert (await client.get(f"/admin/chaos/faults/{fault_id}", headers=ADMIN)).json()["remaining"] == 3
            statuses = [(await client.get("/ping")).status_code for _ in range(5)]
            assert statuses == [500, 500, 500, 200, 200]
            state = await _state(client)
            assert state["faults"] == []
            assert state["injected"]["fail_next"] == 3
            await put_fault(client, "fail-next", {"count": 1, "mode": "drop"})
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/ping")
            assert (await client.get("/ping")).status_code == 200

    run_virtual(main)


def test_error_rate_draws_statuses_from_the_list() -> None:
    async def main() -> list[int]:
        mini = make_mini(seed=5)
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "error-rate", {"probability": 0.5, "statuses": [500, 502, 503]})
            return [(await client.get("/ping")).status_code for _ in range(600)]

    statuses = run_virtual(main)
    counts = {status: statuses.count(status) for status in (200, 500, 502, 503)}
    assert set(statuses) == {200, 500, 502, 503}
    assert 240 <= counts[200] <= 360  # p = 0.5 of 600: mean 300, sd ~12
    for status in (500, 502, 503):
        assert 60 <= counts[status] <= 140  # each ~100


def test_latency_faults_add_up_and_only_in_scope() -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, float]:
        mini = make_mini(clock=clock)
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "latency", {"min_ms": 1000, "max_ms": 1000})
            await put_fault(client, "latency", {"min_ms": 250, "max_ms": 250, "scope": {"path": "/big"}})
            start = clock.monotonic()
            await client.get("/ping")
            ping = clock.monotonic() - start
            start = clock.monotonic()
            await client.get("/big")
            return ping, clock.monotonic() - start

    assert run_virtual(main) == pytest.approx((1.0, 1.25), abs=1e-6)


def test_malformed_body_is_invalid_json_with_a_matching_length() -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            whole = await client.get("/big")
            assert whole.json()["items"][-1] == f"item-{BIG_ITEMS - 1:04d}"
            await put_fault(client, "malformed-body", {"keep_fraction": 0.25})
            response = await client.get("/big")
            assert int(response.headers["content-length"]) == len(response.content) == len(whole.content) // 4
            assert whole.content.startswith(response.content)
            return response

    response = run_virtual(main)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_body_is_a_protocol_error_in_process() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "malformed-body", {"mode": "truncated", "scope": {"path": "/big"}})
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/big")
            assert (await client.get("/ping")).status_code == 200
            [entry] = (await client.get("/admin/requests", headers=ADMIN, params={"path": "/big"})).json()["entries"]
            assert (entry["status"], entry["outcome"], entry["faults"]) == (200, "truncated", ["malformed-body"])

    run_virtual(main)


def test_slow_body_is_dribbled_over_the_duration_on_the_clock() -> None:
    clock = VirtualClock()
    chunks: list[int] = []

    async def main() -> float:
        mini = make_mini(clock=clock)
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "slow-body", {"duration_ms": 4000, "chunks": 8})
            start = clock.monotonic()
            async with client.stream("GET", "/big") as response:
                async for piece in response.aiter_raw():
                    chunks.append(len(piece))
            return clock.monotonic() - start

    assert run_virtual(main) == pytest.approx(4.0, abs=1e-6)
    assert sum(chunks) > BIG_ITEMS * 10


def test_slow_and_malformed_body_combine() -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, bytes, bytes]:
        mini = make_mini(clock=clock)
        async with client_for(mini.sim.app) as client:
            whole = (await client.get("/big")).content
            await put_fault(client, "slow-body", {"duration_ms": 2000, "chunks": 4})
            await put_fault(client, "malformed-body", {"keep_fraction": 0.5})
            start = clock.monotonic()
            body = (await client.get("/big")).content
            state = await _state(client)
            assert state["injected"]["slow_body"] == 1
            assert state["injected"]["malformed_body"] == 1
            return clock.monotonic() - start, body, whole

    elapsed, body, whole = run_virtual(main)
    assert elapsed == pytest.approx(2.0, abs=1e-6)
    assert body == whole[:len(whole) // 2]


def test_outage_wins_over_every_other_fault_and_admin_stays_reachable() -> None:
    clock = VirtualClock()

    async def main() -> None:
        mini = make_mini(clock=clock)
        async with client_for(mini.sim.app) as client:
            for kind, body in (("latency", {"min_ms": 5000, "max_ms": 5000}), ("error-rate", {"probability": 1.0}),
                               ("fail-next", {"count": 5}), ("slow-body", {"duration_ms": 9000}),
                               ("outage", {"status": 503})):
                await put_fault(client, kind, body)
            response = await client.get("/ping")
            assert response.status_code == 503
            assert response.json()["issue"][0]["code"] == "transient"
            assert clock.monotonic() == 0.0
            assert (await client.get("/admin/requests", headers=ADMIN)).status_code == 200
            state = await _state(client)
            assert state["injected"] == {"outage": 1, "latency": 0, "error_rate": 0, "fail_next": 0,
                                         "malformed_body": 0, "slow_body": 0}
            assert state["outage"] == {"mode": "status", "status": 503}
            assert state["fail_next"] == {"count": 5, "mode": "status", "status": 503}

    run_virtual(main)


def test_same_seed_same_decisions_and_fault_management_draws_nothing() -> None:
    async def run(extra_admin_calls: int) -> list[int]:
        mini = make_mini(seed=21)
        async with client_for(mini.sim.app) as client:
            for _ in range(extra_admin_calls):
                fault_id = await put_fault(client, "outage", {"scope": {"path": "/nowhere"}})
                await client.delete(f"/admin/chaos/faults/{fault_id}", headers=ADMIN)
            await put_fault(client, "error-rate", {"probability": 0.3, "statuses": [500, 503]})
            return [(await client.get("/ping")).status_code for _ in range(200)]

    first = run_virtual(lambda: run(0))
    assert first == run_virtual(lambda: run(0))
    assert first == run_virtual(lambda: run(3))
    assert len(set(first)) == 3


def test_scope_and_state_models_directly() -> None:
    scope = FaultScope(path="/a/b/", method="get", client_id="c")
    assert (scope.path, scope.method) == ("/a/b", "GET")
    assert scope.matches("GET", "/a/b/c", "c")
    assert not scope.matches("GET", "/a/bc", "c")
    assert not scope.matches("GET", "/a/b", None)
    state = ChaosState(outage=Outage(), error_rate=ErrorRate(probability=0.1))
    assert state.outage == Outage()
    assert state.latency is None
    state.outage = None
    assert [f.kind for f in state.faults] == ["error-rate"]
    state.reset()
    assert state.faults == []
    assert state.injected.error_rate == 0
    assert ErrorRate(probability=0.5).choices() == [500]


@pytest.mark.parametrize(("kind", "body"), [
    ("fail-next", {"count": 0}),
    ("fail-next", {"count": 2, "mode": "explode"}),
    ("error-rate", {"probability": 0.5, "status": 500, "statuses": [500]}),
    ("error-rate", {"probability": 0.5, "statuses": []}),
    ("error-rate", {"probability": 0.5, "statuses": [200]}),
    ("malformed-body", {"mode": "gzip"}),
    ("malformed-body", {"keep_fraction": 1.0}),
    ("slow-body", {"duration_ms": -1}),
    ("slow-body", {"duration_ms": 10, "chunks": 0}),
    ("outage", {"scope": {"path": "no-slash"}}),
    ("outage", {"scope": {"path": "/x?y=1"}}),
    ("outage", {"scope": {"method": "GET /"}}),
    ("outage", {"scope": {"client_id": ""}}),
    ("outage", {"scope": {"tenant": "t"}}),
    ("latency", {"min_ms": 1, "max_ms": 2, "scope": "everything"}),
])
def test_bad_fault_bodies_are_400_and_change_nothing(kind: str, body: dict[str, Any]) -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            response = await client.put(f"/admin/chaos/{kind}", json=body, headers=ADMIN)
            assert mini.sim.chaos.faults == []
            return response

    response = run_virtual(main)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


def test_unknown_fault_kind_and_malformed_fault_id_are_4xx() -> None:
    async def main() -> list[int]:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            return [(await client.put("/admin/chaos/asteroid", json={}, headers=ADMIN)).status_code,
                    (await client.get("/admin/chaos/faults/fault-x", headers=ADMIN)).status_code,
                    (await client.delete("/admin/chaos/faults/fault-99", headers=ADMIN)).status_code]

    statuses = run_virtual(main)
    assert all(400 <= status < 500 for status in statuses), statuses
    assert statuses[2] == 404


def test_client_scope_uses_the_bearer_token_even_when_expired() -> None:
    async def main() -> int:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            mini.tokens.expire(CLIENT_A)
            await put_fault(client, "outage", {"status": 418, "scope": {"client_id": CLIENT_A}})
            return (await client.get("/fhir/Patient/x", headers=bearer(token))).status_code

    assert run_virtual(main) == 418
