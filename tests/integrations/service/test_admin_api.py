"""Provider status, feature flags and the queue's admin endpoints (runbook 000 §2-§3, §8; runbook 002
§6.3, §7.2): happy paths with §6.3's shapes, then bad input on each, with nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import run_virtual
from integrations.queue import JobState
from tests.integrations.service.support import OP, Svc, error_body, service


async def failed_job(svc: Svc, job_id: str = "unknown-job:rec_1") -> None:
    """A job no handler takes fails at once (NoHandler is unrecoverable)."""
    await svc.queue.add("no-such-job", {"record_id": "rec_1", "org_id": "org_demo"}, job_id=job_id)
    await svc.until_idle()
    job = await svc.queue.get_job(job_id)
    assert job is not None
    assert job.state is JobState.FAILED


def test_provider_status_lists_every_provider(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            body = (await svc.http.get("/api/admin/provider-status", headers=OP)).json()
            assert body["success"] is True
            medplum = body["providers"]["medplum"]
            assert medplum["health"] == "HEALTHY"
            assert medplum["fallback_active"] is False
            assert medplum["breaker_state"] == "CLOSED"

    run_virtual(main)


def test_feature_flags_single_and_batch(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            flags = svc.wired.components.flags
            listed = (await svc.http.get("/api/admin/features", headers=OP)).json()
            assert listed == {"success": True, "features": {"medplum_fhir_read_only": True, "medplum_fhir_write": True}}
            one = (await svc.http.get("/api/admin/features/medplum_fhir_write", headers=OP)).json()
            assert one == {"success": True, "feature": "medplum_fhir_write", "enabled": True, "userOverrides": 0}
            put = await svc.http.put("/api/admin/features/medplum_fhir_write", json={"enabled": False}, headers=OP)
            assert put.status_code == 200
            assert put.json()["enabled"] is False
            assert flags.is_enabled("medplum_fhir_write") is False
            post = await svc.http.post("/api/admin/features", json={"feature": "medplum_fhir_write", "enabled": True},
                                       headers=OP)
            assert post.json()["enabled"] is True
            batch = await svc.http.post("/api/admin/features/batch", headers=OP, json={"updates": [
                {"feature": "medplum_fhir_read_only", "enabled": False},
                {"feature": "medplum_fhir_write", "enabled": False}]})
            assert batch.status_code == 200
            assert batch.json() == {"success": True, "updated": 2,
                                    "features": {"medplum_fhir_read_only": False, "medplum_fhir_write": False}}

    run_virtual(main)


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("GET", "/api/admin/features/nope", None, 404, "unknown_feature_flag"),
    ("PUT", "/api/admin/features/nope", {"enabled": False}, 404, "unknown_feature_flag"),
    ("PUT", "/api/admin/features/medplum_fhir_write", {"enabled": "false"}, 422, "invalid_request"),
    ("PUT", "/api/admin/features/medplum_fhir_write", {"enabled": False, "extra": 1}, 422, "invalid_request"),
    ("PUT", "/api/admin/features/medplum_fhir_write", None, 400, "missing_body"),
    ("PUT", "/api/admin/features/medplum_fhir_write", b"{not json", 400, "malformed_json"),
    ("PUT", "/api/admin/features/medplum_fhir_write", [1, 2], 422, "invalid_request"),
    ("POST", "/api/admin/features", {"feature": "", "enabled": False}, 422, "invalid_request"),
    ("POST", "/api/admin/features/batch", {"updates": []}, 422, "invalid_request"),
    ("POST", "/api/admin/features/batch", {"updates": [{"feature": "medplum_fhir_write", "enabled": False},
                                                       {"feature": "nope", "enabled": False}]},
     404, "unknown_feature_flag"),
    ("POST", "/api/admin/features/batch", {"updates": [{"feature": "medplum_fhir_write", "enabled": False},
                                                       {"feature": "medplum_fhir_write", "enabled": True}]},
     400, "duplicate_feature"),
])
def test_bad_flag_requests_are_4xx_and_change_nothing(tmp_path: Path, method: str, path: str, body: object,
                                                      status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            before = svc.wired.components.flags.snapshot()
            content = body if isinstance(body, bytes) else None
            json_body = None if isinstance(body, bytes) else body
            response = await svc.http.request(method, path, headers=OP, content=content, json=json_body)
            error_body(response, status, code)
            assert svc.wired.components.flags.snapshot() == before

    run_virtual(main)


def test_queue_stats_failed_retry_clean_pause_resume(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            stats = (await svc.http.get("/fhir/admin/queue/stats", headers=OP)).json()
            assert stats == {"success": True, "queue": "fhir-sync", "paused": False,
                             "stats": {"waiting": 0, "active": 0, "completed": 0, "failed": 0, "delayed": 0,
                                       "paused": 0}}
            await failed_job(svc)
            failed = (await svc.http.get("/fhir/admin/queue/failed", params={"limit": 10}, headers=OP)).json()
            assert failed["success"] is True
            assert failed["count"] == 1
            [job] = failed["jobs"]
            assert job["id"] == "unknown-job:rec_1"
            assert job["name"] == "no-such-job"
            assert job["data"] == {"record_id": "rec_1", "org_id": "org_demo"}
            assert job["failedReason"].startswith("NoHandler")
            assert job["attemptsMade"] == 1
            assert job["timestamp"].endswith("Z")

            assert (await svc.http.post("/fhir/admin/queue/pause", headers=OP)).json() == {"success": True,
                                                                                        "paused": True}
            retried = await svc.http.post("/fhir/admin/queue/retry/unknown-job:rec_1", headers=OP)
            assert retried.status_code == 200
            assert retried.json()["job"]["state"] == "waiting"
            stats = (await svc.http.get("/fhir/admin/queue/stats", headers=OP)).json()
            assert stats["paused"] is True
            assert stats["stats"]["paused"] == 1  # waiting behind the pause
            assert (await svc.http.post("/fhir/admin/queue/resume", headers=OP)).json()["paused"] is False
            await svc.until_idle()
            assert (await svc.queue.stats()).failed == 1

            cleaned = await svc.http.post("/fhir/admin/queue/clean", headers=OP)  # retention: kept (30 days)
            assert cleaned.json() == {"success": True, "removed": 0, "mode": "retention"}
            cleaned = await svc.http.post("/fhir/admin/queue/clean", headers=OP,
                                          json={"state": "failed", "graceSeconds": 0})
            assert cleaned.json() == {"success": True, "removed": 1, "mode": "failed"}
            assert (await svc.queue.stats()).failed == 0

    run_virtual(main)


def test_clean_accepts_the_runbook_s_curl_form_body(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await failed_job(svc)
            response = await svc.http.post("/fhir/admin/queue/clean", content=b'{"state": "failed"}',
                                           headers={**OP, "Content-Type": "application/x-www-form-urlencoded"})
            assert response.json()["removed"] == 1

    run_virtual(main)


@pytest.mark.parametrize(("params", "problem"), [
    ({"limit": 0}, "limit"), ({"limit": "abc"}, "limit"), ({"limit": 100_000}, "limit"), ({"offset": -1}, "offset"),
])
def test_failed_listing_rejects_bad_query_parameters(tmp_path: Path, params: dict[str, object], problem: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            body = error_body(await svc.http.get("/fhir/admin/queue/failed", params=params, headers=OP), 422,
                              "invalid_request")
            assert problem in str(body["detail"])

    run_virtual(main)


def test_retry_of_an_unknown_or_unfailed_job_is_4xx_and_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path, start_worker=False) as svc:
            error_body(await svc.http.post("/fhir/admin/queue/retry/nope", headers=OP), 404, "job_not_found")
            await svc.queue.add("no-such-job", {"record_id": "rec_2"}, job_id="waiting:rec_2")
            error_body(await svc.http.post("/fhir/admin/queue/retry/waiting:rec_2", headers=OP), 409,
                       "invalid_job_state")
            job = await svc.queue.get_job("waiting:rec_2")
            assert job is not None
            assert (job.state, job.attempts_made) == (JobState.WAITING, 0)

    run_virtual(main)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"state": "active"}, 422, "invalid_request"),
    ({"graceSeconds": 5}, 400, "invalid_request"),
    ({"state": "failed", "graceSeconds": -1}, 422, "invalid_request"),
    ({"state": "failed", "limit": "all"}, 422, "invalid_request"),
    (b"[]", 422, "invalid_request"),
    (b"{", 400, "malformed_json"),
])
def test_clean_rejects_bad_bodies_and_removes_nothing(tmp_path: Path, body: object, status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await failed_job(svc)
            content = body if isinstance(body, bytes) else None
            json_body = None if isinstance(body, bytes) else body
            response = await svc.http.post("/fhir/admin/queue/clean", headers=OP, content=content, json=json_body)
            error_body(response, status, code)
            assert (await svc.queue.stats()).failed == 1

    run_virtual(main)
