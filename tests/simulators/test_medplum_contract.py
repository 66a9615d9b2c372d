"""Medplum facts as tests (reference/vendors.md §3): RateLimit header, quotas, 429 shape, AuditEvents,
scopes, 410 after delete, SMART configuration, paging through another host:port, $everything."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.clock import VirtualClock, run_virtual
from tests.simulators.support import CLIENT_ID, CLIENT_SECRET, bearer, client_for, get_token, make_medplum, patient

GONE = {"resourceType": "OperationOutcome", "id": "gone",
        "issue": [{"severity": "error", "code": "deleted", "details": {"text": "Gone"}}]}


def parse_ratelimit(value: str) -> dict[str, tuple[int, int]]:
    """What @medplum/core's client does: each comma-separated item must have exactly three `;` parts."""
    limits: dict[str, tuple[int, int]] = {}
    for item in value.split(","):
        parts = item.strip().split(";")
        if len(parts) != 3:
            raise ValueError("Could not parse RateLimit header")
        name, r, t = parts
        assert name.startswith('"')
        assert name.endswith('"')
        assert r.startswith("r=")
        assert t.startswith("t=")
        limits[name.strip('"')] = (int(r[2:]), int(t[2:]))
    return limits


def test_ratelimit_header_has_medplums_exact_format_and_weights() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            read = await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
            raw = read.headers.get_list("ratelimit")
            assert raw == ['"requests";r=59999;t=60', '"fhirInteractions";r=49999;t=60']  # token: auth limit
            assert parse_ratelimit(read.headers["ratelimit"]) == {"requests": (59999, 60),
                                                                  "fhirInteractions": (49999, 60)}
            search = await client.get("/fhir/R4/Patient", headers=auth)
            assert parse_ratelimit(search.headers["ratelimit"])["fhirInteractions"] == (49979, 60)  # search: 20
            created = await client.post("/fhir/R4/Patient", json=patient(), headers=auth)
            assert parse_ratelimit(created.headers["ratelimit"])["fhirInteractions"] == (49879, 60)  # write: 100
            history = await client.get(f"/fhir/R4/Patient/{pid}/_history", headers=auth)
            assert parse_ratelimit(history.headers["ratelimit"])["fhirInteractions"] == (49869, 60)  # history: 10
            health = await client.get("/healthcheck")
            assert health.headers.get_list("ratelimit") == ['"requests";r=59995;t=60']
            token = await client.post("/oauth2/token", data={"grant_type": "client_credentials"})
            assert token.headers.get_list("ratelimit") == ['"requests";r=158;t=60']  # the auth limit, per IP

    run_virtual(main)


def test_fhir_quota_429_has_no_retry_after_and_resets_after_a_minute() -> None:
    """Medplum's own test: quota 20, one search leaves r=0, the next request gets 429."""
    clock = VirtualClock()

    async def main() -> None:
        sim = make_medplum(clock=clock, fhir_quota_per_minute=20)
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            await clock.sleep(15)
            search = await client.get("/fhir/R4/Patient", params={"_count": "20"}, headers=auth)
            assert search.status_code == 200
            assert parse_ratelimit(search.headers["ratelimit"])["fhirInteractions"] == (0, 60)
            await clock.sleep(20.5)
            refused = await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
            assert refused.status_code == 429
            assert "retry-after" not in refused.headers
            assert refused.headers["content-type"].startswith("application/fhir+json")
            outcome = refused.json()
            assert outcome["id"] == "too-many-requests"
            assert outcome["issue"][0]["code"] == "throttled"
            assert outcome["issue"][0]["details"] == {"text": "Too Many Requests"}
            assert json.loads(outcome["issue"][0]["diagnostics"]) == {
                "remainingPoints": 0, "msBeforeNext": 39500, "consumedPoints": 21, "isFirstInDuration": False,
                "limit": 20}
            assert parse_ratelimit(refused.headers["ratelimit"])["fhirInteractions"] == (0, 40)
            await clock.sleep(40)
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).status_code == 200

    run_virtual(main)


def test_project_quota_is_shared_and_the_header_shows_the_tighter_limit() -> None:
    async def main() -> None:
        sim = make_medplum(fhir_quota_per_minute=50, project_quota_multiplier=1)
        sim.registry.register("second-app", secret="second-secret")
        async with client_for(sim) as client:
            first = bearer(await get_token(client))
            second_token = (await client.post("/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": "second-app",
                "client_secret": "second-secret"})).json()["access_token"]
            one = await client.get("/fhir/R4/Patient", headers=first)
            assert parse_ratelimit(one.headers["ratelimit"])["fhirInteractions"] == (30, 60)
            two = await client.get("/fhir/R4/Patient", headers=bearer(second_token))
            assert parse_ratelimit(two.headers["ratelimit"])["fhirInteractions"] == (10, 60)  # project: 50-40
            three = await client.get("/fhir/R4/Patient", headers=bearer(second_token))
            assert three.status_code == 429

    run_virtual(main)


def test_request_limit_per_ip_answers_429_as_plain_json() -> None:
    async def main() -> None:
        sim = make_medplum(rate_limit_per_minute=2)
        async with client_for(sim) as client:
            assert [(await client.get("/healthcheck")).status_code for _ in range(2)] == [200, 200]
            refused = await client.get("/healthcheck")
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/json; charset=utf-8"
            assert refused.headers.get_list("ratelimit") == ['"requests";r=0;t=60']
            assert refused.json()["id"] == "too-many-requests"
            assert (await client.get("/admin/requests", headers={"Authorization": "Bearer admin-token-for-tests"})
                    ).status_code == 200  # the admin API is never limited

    run_virtual(main)


def test_every_fhir_interaction_writes_an_audit_event() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
            await client.get("/fhir/R4/Patient/missing", headers=auth)
            await client.get("/fhir/R4/Observation", params={"patient": pid}, headers=auth)
            events = (await client.get("/fhir/R4/AuditEvent", params={"_sort": "date"}, headers=auth)).json()
            assert events["total"] == 3  # searching the audit trail is not itself audited
            rows = [(e["resource"]["subtype"][0]["code"], e["resource"]["action"], e["resource"]["outcome"],
                     e["resource"].get("entity", [{}])[0].get("what", {}).get("reference"))
                    for e in events["entry"]]
            assert rows == [("read", "R", "0", f"Patient/{pid}"), ("read", "R", "4", "Patient/missing"),
                            ("search", "R", "0", None)]
            assert all(e["resource"]["agent"][0]["who"] == {"reference": f"ClientApplication/{CLIENT_ID}"}
                       for e in events["entry"])
            mine = (await client.get("/fhir/R4/AuditEvent", params={"entity": f"Patient/{pid}"}, headers=auth)).json()
            assert mine["total"] == 1
            assert CLIENT_SECRET not in json.dumps(events)

    run_virtual(main)


def test_scopes_are_enforced_per_resource_and_interaction() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = (await client.post("/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "scope": "system/Patient.read"})).json()["access_token"]
            auth = bearer(token)
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).status_code == 200
            assert (await client.get("/fhir/R4/Patient", headers=auth)).status_code == 200  # v1 read = rs
            for response in (await client.post("/fhir/R4/Patient", json=patient(), headers=auth),
                             await client.get("/fhir/R4/Observation", headers=auth),
                             await client.delete(f"/fhir/R4/Patient/{pid}", headers=auth)):
                assert response.status_code == 403
                assert response.json()["id"] == "forbidden"
            sim.registry.set_scopes(CLIENT_ID, ["system/Observation.rs"])
            narrowed = (await client.post("/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "scope": "system/Patient.read"})).json()["access_token"]
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(narrowed))).status_code == 403

    run_virtual(main)


def test_delete_then_read_is_410_gone_and_404_on_the_memory_repository() -> None:
    async def main(status: int) -> dict[str, Any]:
        sim = make_medplum(deleted_read_status=status)
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            assert (await client.delete(f"/fhir/R4/Patient/{pid}", headers=auth)).json()["id"] == "allok"
            response = await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)
            assert response.status_code == status
            return dict(response.json())

    assert run_virtual(lambda: main(410)) == GONE
    assert run_virtual(lambda: main(404))["id"] == "not-found"


def test_paging_through_a_proxy_port_and_everything_and_smart_configuration() -> None:
    async def main() -> None:
        sim = make_medplum()
        ids = sim.seed_patients(5)
        async with client_for(sim, "http://127.0.0.1:29999") as client:
            auth = bearer(await get_token(client))
            url: str | None = "/fhir/R4/Patient?_count=2"
            seen: list[str] = []
            while url:
                bundle = (await client.get(url, headers=auth)).json()
                seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
                url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
                assert url is None or url.startswith("http://127.0.0.1:29999/fhir/R4/Patient?")
                assert url is None or "_offset=" in url
            assert seen == ids
            everything = (await client.get(f"/fhir/R4/Patient/{ids[0]}/$everything", headers=auth)).json()
            assert everything["entry"][0]["resource"]["id"] == ids[0]
            assert {e["resource"]["resourceType"] for e in everything["entry"]} >= {"Patient", "Encounter",
                                                                                    "Observation"}
            smart = await client.get("/fhir/R4/.well-known/smart-configuration")  # public
            assert smart.status_code == 200
            assert smart.json()["token_endpoint"] == "http://127.0.0.1:29999/oauth2/token"
            metadata = (await client.get("/fhir/R4/metadata")).json()
            assert metadata["software"]["name"] == "Medplum"

    run_virtual(main)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_admin_drift_is_visible_through_fhir(method: str) -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        admin = {"Authorization": "Bearer admin-token-for-tests"}
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            before = (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).headers["etag"]
            touched = await client.post(f"/admin/drift/Patient/{pid}/touch", headers=admin)
            assert touched.status_code == 200
            after = (await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).headers["etag"]
            assert after != before
            stale = await client.put(f"/fhir/R4/Patient/{pid}", json=sim.store.read("Patient", pid),
                                     headers={**auth, "If-Match": before})
            assert stale.status_code == 412

    run_virtual(main)


def test_both_ways_into_the_fhir_api_answer_alike_and_are_documented() -> None:
    """The FHIR core is served by a Starlette Mount (fast) and documented by the included router."""
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            auth = bearer(await get_token(client))
            bundle = {"resourceType": "Bundle", "type": "batch",
                      "entry": [{"request": {"method": "GET", "url": "Patient?_count=1"}}]}
            with_slash = await client.post("/fhir/R4/", json=bundle, headers=auth)
            without = await client.post("/fhir/R4", json=bundle, headers=auth)
            assert with_slash.status_code == without.status_code == 200
            assert with_slash.json() == without.json()
            created = await client.post("/fhir/R4/Patient", json=patient(), headers=auth)
            assert created.status_code == 201
            paths = (await client.get("/openapi.json")).json()["paths"]
            assert {"/fhir/R4/{resource_type}/{resource_id}", "/fhir/R4/{resource_type}", "/oauth2/token",
                    "/healthcheck"} <= set(paths)
            events = sim.audit_events()
            assert [(e["subtype"][0]["code"], e["action"]) for e in events][-1] == ("create", "C")
            assert events[-1]["entity"] == [{"what": {"reference": f"Patient/{created.json()['id']}"}}]
            assert events[-1]["meta"]["lastUpdated"] == events[-1]["recorded"]

    run_virtual(main)
