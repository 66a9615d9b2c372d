"""The audit mirror over HTTP (runbook 002 §2.6, §5 Step 5B, §6.3, §10.2): Medplum's AuditEvents of the
service's own syncs are mirrored incrementally and searched; cron needs the secret; a Medplum outage is a
502 with the result; bad input and refused callers run nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.clock import run_virtual
from integrations.sync import AuditEventType, EncounterDetails, ObservationDetails, RecordKind
from tests.integrations.service.support import API_KEY, CRON, CRON_HEADERS, OP, OPERATOR, Svc, error_body, service

TOKEN = "pt_mir001"
BASE = "/fhir/admin/audit-mirror"
RESULT_KEYS = {"startTime", "endTime", "durationMs", "fetched", "mirrored", "skipped", "errors", "lastSyncedAt"}


def runs(svc: Svc) -> int:
    (n,) = svc.wired.store.db.connection.execute("SELECT COUNT(*) FROM audit_mirror_runs").fetchone()
    return int(n)


def mirrored(svc: Svc) -> int:
    (n,) = svc.wired.store.db.connection.execute("SELECT COUNT(*) FROM mirrored_audit_events").fetchone()
    return int(n)


async def synced(svc: Svc) -> str:
    """An encounter and an observation synced to Medplum (each sync writes AuditEvents there); the
    encounter's FHIR id."""
    svc.patient(TOKEN)
    record = await svc.wired.store.create_encounter("org_demo", TOKEN, EncounterDetails())
    await svc.wired.store.create_observation("org_demo", TOKEN, ObservationDetails(code="8310-5", value=37.0,
                                                                                  unit="Cel"))
    await svc.until_idle()
    stored = svc.wired.store.get(RecordKind.ENCOUNTER, record.id)
    assert stored is not None
    assert stored.fhir_resource_id is not None
    return stored.fhir_resource_id


def newest(events: list[dict[str, Any]]) -> str:
    return max(str(e["meta"]["lastUpdated"]) for e in events)


def test_runs_are_incremental_forced_runs_skip_and_stats_and_search_match(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            encounter_id = await synced(svc)
            medplum = svc.simulator.audit_events()
            assert len(medplum) >= 3  # Patient, Encounter, Observation upserts

            response = await svc.http.post(f"{BASE}/run", headers=OP, json={"limit": 1000})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["success"] is True
            first = body["result"]
            assert set(first) == RESULT_KEYS
            assert (first["fetched"], first["mirrored"], first["skipped"], first["errors"]) == (
                len(medplum), len(medplum), 0, 0)
            assert first["lastSyncedAt"].replace("Z", "+00:00")[:19] == newest(medplum).replace("Z", "+00:00")[:19]

            again = (await svc.http.post(f"{BASE}/run", headers=OP)).json()["result"]  # no body: the defaults
            assert (again["fetched"], again["mirrored"]) == (0, 0)

            await svc.clock.sleep(5)
            await svc.wired.store.create_observation("org_demo", TOKEN, ObservationDetails(code="8310-5", value=38.1,
                                                                                          unit="Cel"))
            await svc.until_idle()
            total = len(svc.simulator.audit_events())
            third = (await svc.http.post(f"{BASE}/run", headers=OP, content=b'{"limit": 1000}')).json()["result"]
            assert (third["fetched"], third["mirrored"]) == (total - len(medplum), total - len(medplum))

            forced = (await svc.http.post(f"{BASE}/run", headers=OP,
                                          json={"forceSince": "2000-01-01T00:00:00Z", "limit": 1000})).json()
            assert (forced["result"]["fetched"], forced["result"]["mirrored"], forced["result"]["skipped"]) == (
                total, 0, total)
            assert mirrored(svc) == total

            stats = (await svc.http.get(f"{BASE}/stats", headers=OP)).json()
            assert stats["success"] is True
            assert set(stats["stats"]) == {"lastRun", "lastSyncedAt", "totalMirrored", "recentRuns"}
            assert stats["stats"]["totalMirrored"] == total
            recent = stats["stats"]["recentRuns"]
            assert [r["mirrored"] for r in recent] == [0, total - len(medplum), 0, len(medplum)]  # newest first
            assert {"timestamp", "mirrored", "skipped", "errors"} <= set(recent[0])
            assert recent[0]["skipped"] == total

            found = (await svc.http.get(f"{BASE}/search", headers=OP,
                                        params={"entityReference": f"Encounter/{encounter_id}"})).json()
            assert found["count"] == 1
            assert found["events"][0]["entities"][0]["what"] == f"Encounter/{encounter_id}"
            kinds = {e["eventType"] for e in (await svc.http.get(f"{BASE}/search", headers=OP)).json()["events"]}
            one = sorted(kinds)[0]
            typed = (await svc.http.get(f"{BASE}/search", headers=OP,
                                        params={"eventTypes": f"{one},FHIR_DELETE", "limit": 2})).json()
            assert 1 <= typed["count"] <= 2
            assert {e["eventType"] for e in typed["events"]} == {one}
            window = (await svc.http.get(f"{BASE}/search", headers=OP,
                                         params={"since": "2000-01-01", "until": "2000-01-02"})).json()
            assert window == {"success": True, "count": 0, "events": []}
            assert (await svc.http.get(f"{BASE}/search", headers=OP, params={"orgId": "org_nobody"})).json()[
                "count"] == 0

            trail = svc.wired.components.audit
            assert trail is not None
            assert len(trail.search(event_types=[AuditEventType.FHIR_AUDIT_MIRROR])) == 4
            samples = (await svc.http.get("/metrics", headers=OP)).text
            assert 'holi_hipaa_audit_events_total{event_type="FHIR_AUDIT_MIRROR"' in samples

    run_virtual(main)


def test_cron_runs_with_the_secret_only(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced(svc)
            for headers in ({}, {"X-Cron-Secret": "wrong_secret"}, {"X-Cron-Secret": CRON[:-1]},
                            {"X-Cron-Secret": ""}, {"X-Cron-Secret": OPERATOR}, {"Authorization": f"Bearer {OPERATOR}"},
                            {"Authorization": f"Bearer {CRON}"}):
                error_body(await svc.http.post(f"{BASE}/cron", headers=headers, json={"limit": 1000}), 403)
            error_body(await svc.http.post(f"{BASE}/run", headers={"Authorization": f"Bearer {CRON}"}), 403,
                       "invalid_token")
            assert runs(svc) == 0
            response = await svc.http.post(f"{BASE}/cron", headers=CRON_HEADERS,
                                           content=b'{"limit": 1000}')  # the runbook's curl -d, no JSON type
            assert response.status_code == 200, response.text
            assert response.json()["result"]["mirrored"] == len(svc.simulator.audit_events())
            assert runs(svc) == 1

    run_virtual(main)


def test_a_medplum_outage_is_a_502_with_the_result_and_the_next_run_catches_up(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced(svc)
            breaker = svc.wired.vendor_client.breaker
            breaker.force_open()
            body = error_body(await svc.http.post(f"{BASE}/cron", headers=CRON_HEADERS), 502, "audit_mirror_failed")
            stopped: dict[str, Any] = body["result"]  # type: ignore[assignment]
            assert stopped["errors"] == 1
            assert stopped["failure"] == "CircuitOpen"
            assert mirrored(svc) == 0
            history = (await svc.http.get(f"{BASE}/stats", headers=OP)).json()["stats"]["recentRuns"]
            assert history[0]["status"] == "failed"
            breaker.reset()
            result = (await svc.http.post(f"{BASE}/cron", headers=CRON_HEADERS)).json()["result"]
            assert result["mirrored"] == len(svc.simulator.audit_events()) == mirrored(svc)

    run_virtual(main)


BAD_BODIES = [
    ({"limit": 0}, 422, "invalid_request"),
    ({"limit": -5}, 422, "invalid_request"),
    ({"limit": "1000"}, 422, "invalid_request"),
    ({"limit": 1.5}, 422, "invalid_request"),
    ({"limit": 10**9}, 422, "invalid_request"),
    ({"forceSince": "yesterday"}, 422, "invalid_request"),
    ({"forceSince": "2024-13-01"}, 422, "invalid_request"),
    ({"forceSince": 0}, 422, "invalid_request"),
    ({"forceSince": ["2024-01-01"]}, 422, "invalid_request"),
    ({"limit": 1000, "dryRun": True}, 422, "invalid_request"),
    (b'{"limit": ', 400, "malformed_json"),
    (b'"run"', 422, "invalid_request"),
    (b"[1000]", 422, "invalid_request"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_run_bodies_run_nothing(tmp_path: Path, body: object, status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced(svc)
            for path, headers in ((f"{BASE}/run", OP), (f"{BASE}/cron", CRON_HEADERS)):
                content = body if isinstance(body, bytes) else None
                response = await svc.http.post(path, headers=headers, content=content,
                                               json=None if content is not None else body)
                detail = str(error_body(response, status, code)["detail"])
                assert "yesterday" not in detail  # fields are named, values never echoed
            assert runs(svc) == 0
            assert mirrored(svc) == 0

    run_virtual(main)


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"limit": 0}, 422, "invalid_request"),
    ({"limit": 1_000_000}, 422, "invalid_request"),
    ({"limit": "ten"}, 422, "invalid_request"),
    ({"eventTypes": "FHIR_BOGUS"}, 400, "invalid_query"),
    ({"eventTypes": "FHIR_CREATE,fhir_update"}, 400, "invalid_query"),
    ({"eventTypes": ","}, 400, "invalid_query"),
    ({"since": "last week"}, 400, "invalid_query"),
    ({"until": "2024-02-30"}, 400, "invalid_query"),
    ({"since": "2024-01-02", "until": "2024-01-01"}, 400, "invalid_query"),
    ({"orgId": "org demo"}, 422, "invalid_request"),
    ({"agentReference": "Dr. Smith"}, 422, "invalid_request"),
    ({"entityReference": "Patient/"}, 422, "invalid_request"),
])
def test_bad_search_queries_are_4xx(tmp_path: Path, params: dict[str, str | int], status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            error_body(await svc.http.get(f"{BASE}/search", params=params, headers=OP), status, code)

    run_virtual(main)


def test_bad_stats_query_is_422(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            error_body(await svc.http.get(f"{BASE}/stats", params={"recent": 0}, headers=OP), 422, "invalid_request")

    run_virtual(main)


@pytest.mark.parametrize(("method", "path"), [("GET", f"{BASE}/stats"), ("POST", f"{BASE}/run"),
                                              ("GET", f"{BASE}/search")])
def test_operator_endpoints_need_the_token(tmp_path: Path, method: str, path: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced(svc)
            error_body(await svc.http.request(method, path), 401, "unauthenticated")
            for token in ("x" * 64, CRON, API_KEY, OPERATOR[:-1]):
                error_body(await svc.http.request(method, path, headers={"Authorization": f"Bearer {token}"}), 403,
                           "invalid_token")
            error_body(await svc.http.request(method, path, headers=CRON_HEADERS), 401)
            assert runs(svc) == 0

    run_virtual(main)
