"""Data drift through the admin API: what a client sees after each change behind its back."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harness.clock import VirtualClock, run_virtual
from simulators.admin.assemble import assemble
from simulators.fhir.store import ResourceStore, integer_versions
from tests.admin.support import ADMIN, ADMIN_TOKEN, bearer, client_for, get_token, make_mini, patient


async def _read(client: httpx.AsyncClient, token: str, pid: str) -> httpx.Response:
    return await client.get(f"/fhir/Patient/{pid}", headers=bearer(token))


def test_replace_silently_changes_content_but_not_version_or_etag() -> None:
    async def main() -> tuple[httpx.Response, httpx.Response, dict[str, Any]]:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            before = await _read(client, token, pid)
            changed = await client.put(f"/admin/drift/Patient/{pid}", headers=ADMIN,
                                       json=patient(gender="male", name=[{"family": "Roe"}]))
            assert changed.status_code == 200, changed.text
            return before, await _read(client, token, pid), changed.json()

    before, after, answer = run_virtual(main)
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json()["meta"] == before.json()["meta"] == answer["meta"]
    assert (before.json()["gender"], after.json()["gender"]) == ("female", "male")
    assert after.json()["name"] == [{"family": "Roe"}]


def test_touch_bumps_the_version_without_changing_content() -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            before = (await _read(client, token, pid)).json()
            touched = await client.post(f"/admin/drift/Patient/{pid}/touch", headers=ADMIN)
            assert touched.status_code == 200
            assert touched.json()["meta"]["versionId"] == "2"
            return before, (await _read(client, token, pid)).json()

    before, after = run_virtual(main)
    assert (before["meta"]["versionId"], after["meta"]["versionId"]) == ("1", "2")
    assert {k: v for k, v in before.items() if k != "meta"} == {k: v for k, v in after.items() if k != "meta"}


def test_shift_last_updated_moves_it_without_a_new_version() -> None:
    async def main() -> dict[str, Any]:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            shifted = await client.post(f"/admin/drift/Patient/{pid}/shift-last-updated", json={"seconds": -86400},
                                        headers=ADMIN)
            assert shifted.status_code == 200
            meta: dict[str, Any] = (await _read(client, token, pid)).json()["meta"]
            return meta

    meta = run_virtual(main)
    assert meta == {"versionId": "1", "lastUpdated": "2026-01-04T08:00:00.000Z"}


def test_delete_behind_the_back_then_reads_fail_and_a_second_delete_is_404() -> None:
    async def main() -> None:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            assert (await _read(client, token, pid)).status_code == 200
            deleted = await client.delete(f"/admin/drift/Patient/{pid}", headers=ADMIN)
            assert deleted.status_code == 200
            assert deleted.json() == {"resourceType": "Patient", "id": pid, "deleted": True, "versionId": "2"}
            assert (await _read(client, token, pid)).status_code == 404
            again = await client.delete(f"/admin/drift/Patient/{pid}", headers=ADMIN)
            assert again.status_code == 404
            for action in ("touch", "shift-last-updated"):
                response = await client.post(f"/admin/drift/Patient/{pid}/{action}", json={"seconds": 1},
                                             headers=ADMIN)
                assert response.status_code == 404

    run_virtual(main)


@pytest.mark.parametrize(("method", "suffix", "body", "status"), [
    ("PUT", "", {"resourceType": "Observation"}, 400),
    ("PUT", "", {"resourceType": "Patient", "id": "other"}, 400),
    ("PUT", "", {"resourceType": "Patient", "gender": 7}, 400),
    ("PUT", "", {"resourceType": "Patient", "meta": "nope"}, 400),
    ("PUT", "", {"resourceType": "Patient", "bogus": True}, 400),
    ("PUT", "", ["Patient"], 400),
    ("POST", "/shift-last-updated", {"seconds": "soon"}, 400),
    ("POST", "/shift-last-updated", {"seconds": 1e12}, 400),
    ("POST", "/shift-last-updated", {}, 400),
])
def test_bad_drift_requests_are_4xx_and_change_nothing(method: str, suffix: str, body: object, status: int) -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        before = mini.store.read("Patient", pid)
        async with client_for(mini.sim.app) as client:
            response = await client.request(method, f"/admin/drift/Patient/{pid}{suffix}", json=body, headers=ADMIN)
        assert mini.store.read("Patient", pid) == before
        return response

    response = run_virtual(main)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/admin/drift/Patient/nope/touch", "/admin/drift/Nothing/x/touch",
                                  "/admin/drift/patient/x/touch", "/admin/drift/Patient/bad id!/touch"])
def test_unknown_or_malformed_targets_are_4xx(path: str) -> None:
    async def main() -> int:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            return (await client.post(path, headers=ADMIN)).status_code

    assert run_virtual(main) in (400, 404)


def test_tenant_query_picks_a_tenant_store() -> None:
    async def main() -> None:
        clock = VirtualClock()
        default = ResourceStore(clock, new_id=lambda: "same-id", new_version=integer_versions())
        other = ResourceStore(clock, new_id=lambda: "same-id", new_version=integer_versions())
        default.create(patient())
        other.create(patient())
        sim = assemble(FastAPI(), name="tenants", clock=clock, rng=random.Random(1), admin_token=ADMIN_TOKEN,
                       registry=None, tokens=None, store=default, tenant_stores={"t-1": default, "t-2": other})
        async with client_for(sim.app) as client:
            touched = await client.post("/admin/drift/Patient/same-id/touch", params={"tenant": "t-2"},
                                        headers=ADMIN)
            assert touched.status_code == 200
            assert (default.version("Patient", "same-id"), other.version("Patient", "same-id")) == ("1", "2")
            await client.post("/admin/drift/Patient/same-id/touch", headers=ADMIN)  # no tenant: the default
            assert default.version("Patient", "same-id") == "2"
            unknown = await client.post("/admin/drift/Patient/same-id/touch", params={"tenant": "t-9"},
                                        headers=ADMIN)
            assert unknown.status_code == 404
            malformed = await client.post("/admin/drift/Patient/same-id/touch", params={"tenant": "a b"},
                                          headers=ADMIN)
            assert malformed.status_code == 400

    run_virtual(main)
