"""The admin API as a whole: the token guards every route, reset, the OpenAPI schema, assembly."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.clock import VirtualClock, run_virtual
from simulators.admin.assemble import assemble
from tests.admin.support import ADMIN, ADMIN_TOKEN, CLIENT_A, bearer, client_for, get_token, make_mini, put_fault


def _admin_routes() -> list[tuple[str, str]]:
    async def main() -> list[tuple[str, str]]:
        mini = make_mini()
        paths = mini.api.openapi()["paths"]  # the public view of every route, included routers too
        return [(method.upper(), path) for path in sorted(paths) if path.startswith("/admin")
                for method in sorted(paths[path])]

    return run_virtual(main)


ADMIN_ROUTES = _admin_routes()


def test_every_admin_area_is_mounted() -> None:
    prefixes = {path.split("/")[2] for _, path in ADMIN_ROUTES}
    assert prefixes == {"chaos", "requests", "clients", "tokens", "rate-limits", "drift", "reset"}
    assert len(ADMIN_ROUTES) >= 30


def _concrete(path: str) -> str:
    return (path.replace("{fault_id}", "fault-1").replace("{client_id}", CLIENT_A)
            .replace("{credential_id}", "cred-000000000000").replace("{name}", "fhir")
            .replace("{resource_type}", "Patient").replace("{resource_id}", "p1"))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"},
                                     {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": "Bearer "},
                                     {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                                     {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}])
def test_every_admin_route_needs_the_admin_token(headers: dict[str, str]) -> None:
    async def main() -> list[tuple[str, str, int, str]]:
        mini = make_mini()
        token = await _token(mini)
        seen = []
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "latency", {"min_ms": 1, "max_ms": 1})
            before = mini.sim.chaos.to_json()
            for method, path in ADMIN_ROUTES:
                # a malformed body too: the token is checked before the body is read
                response = await client.request(method, _concrete(path), headers=headers, content=b"{not json",
                                                params={"limit": "-5"})
                seen.append((method, path, response.status_code, response.json()["issue"][0]["code"]))
                assert response.headers["www-authenticate"] == 'Bearer realm="admin"'
            assert mini.sim.chaos.to_json() == before
            assert mini.tokens.check(token) is not None
            assert len(mini.sim.journal) == 0
        return seen

    seen = run_virtual(main)
    assert len(seen) == len(ADMIN_ROUTES) >= 30
    for method, path, status, code in seen:
        assert (status, code) == (401, "login"), (method, path)


async def _token(mini: Any) -> str:
    async with client_for(mini.sim.app) as client:
        token = await get_token(client)
        await client.delete("/admin/requests", headers=ADMIN)
        return token


def test_reset_clears_faults_journal_and_limiter_counters_but_keeps_tokens_by_default() -> None:
    async def main() -> None:
        mini = make_mini(limit=1)
        pid = mini.store.create({"resourceType": "Patient"})["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token))).status_code == 200
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token))).status_code == 429
            await put_fault(client, "outage", {"scope": {"path": "/ping"}})
            response = await client.post("/admin/reset", headers=ADMIN)
            assert response.status_code == 200
            assert response.json()["reset"] == {"faults": True, "journal": 3, "rate_limits": ["fhir"]}
            assert mini.sim.chaos.faults == []
            assert mini.sim.chaos.injected.outage == 0
            assert len(mini.sim.journal) == 0
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token))).status_code == 200
            assert (await client.get("/ping")).status_code == 200
            only_tokens = await client.post("/admin/reset", headers=ADMIN, json={
                "faults": False, "journal": False, "rate_limits": False, "tokens": True})
            assert only_tokens.json()["reset"] == {"tokens": True}
            assert len(mini.sim.journal) == 2
            assert (await client.get(f"/fhir/Patient/{pid}", headers=bearer(token))).status_code == 401

    run_virtual(main)


def test_reset_reseeds_the_same_population_for_the_same_seed() -> None:
    async def seeded(seed: int) -> list[dict[str, Any]]:
        mini = make_mini()
        mini.store.create({"resourceType": "Patient", "gender": "unknown"})
        async with client_for(mini.sim.app) as client:
            response = await client.post("/admin/reset", json={"reseed": {"patients": 3, "seed": seed}}, headers=ADMIN)
            assert response.status_code == 200, response.text
            assert response.json()["reset"]["reseed"] == {"patients": 3, "seed": seed}
        patients = [r for r in mini.store if r["resourceType"] == "Patient"]
        assert len(patients) == 3
        assert all(r.get("gender") != "unknown" or "name" in r for r in patients)
        return [{k: v for k, v in r.items() if k not in ("id", "meta")} for r in patients]

    first = run_virtual(lambda: seeded(11))
    assert first == run_virtual(lambda: seeded(11))
    assert first != run_virtual(lambda: seeded(12))


@pytest.mark.parametrize("body", [{"reseed": {"patients": -1}}, {"reseed": {"patients": 10**6}},
                                  {"faults": "yes"}, {"everything": True}, [1]])
def test_bad_reset_bodies_are_400_and_reset_nothing(body: object) -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await put_fault(client, "latency", {"min_ms": 1, "max_ms": 1})
            response = await client.post("/admin/reset", json=body, headers=ADMIN)
            assert len(mini.sim.chaos.faults) == 1
            return response

    response = run_virtual(main)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


def test_an_app_without_store_or_credentials_gets_only_what_applies() -> None:
    async def main() -> list[int]:
        app = FastAPI()
        sim = assemble(app, name="bare", clock=VirtualClock(), rng=random.Random(1), admin_token=ADMIN_TOKEN,
                       registry=None, tokens=None, store=None)
        async with client_for(sim.app) as client:
            return [(await client.post("/admin/reset", json={"reseed": {"patients": 1}}, headers=ADMIN)).status_code,
                    (await client.get("/admin/clients", headers=ADMIN)).status_code,
                    (await client.post("/admin/drift/Patient/x/touch", headers=ADMIN)).status_code,
                    (await client.get("/admin/rate-limits", headers=ADMIN)).status_code,
                    (await client.get("/admin/chaos", headers=ADMIN)).status_code]

    assert run_virtual(main) == [400, 404, 404, 200, 200]


def test_empty_admin_token_is_refused() -> None:
    with pytest.raises(ValueError, match="admin_token"):
        assemble(FastAPI(), name="x", clock=VirtualClock(), rng=random.Random(1), admin_token="", registry=None,
                 tokens=None, store=None)


def test_openapi_documents_the_admin_api_and_its_bearer_scheme() -> None:
    async def main() -> dict[str, Any]:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            response = await client.get("/openapi.json")
            assert response.status_code == 200
            schema: dict[str, Any] = response.json()
            return schema

    schema = run_virtual(main)
    assert schema["components"]["securitySchemes"]["adminToken"] == {
        "type": "http", "scheme": "bearer", "description": "The simulator's admin token (printed by `ehrlab serve`)."}
    for method, path in ADMIN_ROUTES:
        operation = schema["paths"][path][method.lower()]
        assert operation["security"] == [{"adminToken": []}], (method, path)
    fail_next = schema["components"]["schemas"]["FailNext"]["properties"]
    assert {"count", "mode", "status", "scope"} <= set(fail_next)
    assert "ErrorRate" in schema["components"]["schemas"]
    assert "statuses" in schema["components"]["schemas"]["ErrorRate"]["properties"]
