"""`/metrics`: Prometheus text that prometheus_client's own parser reads, with runbook 002 §8.3's names,
in a registry per app (never the global one), moved by jobs and requests."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from harness.clock import run_virtual
from tests.integrations.service.support import OP, service

RUNBOOK_METRICS = {
    "holi_queue_jobs_active", "holi_queue_jobs_waiting", "holi_queue_jobs_failed",
    "holi_queue_job_duration_seconds", "holi_queue_job_errors_total",
    "holi_fhir_sync_operations_total", "holi_fhir_sync_duration_seconds", "holi_fhir_sync_errors_total",
    "holi_fhir_sync_not_synced", "holi_fhir_sync_stale",
    "holi_hipaa_audit_events_total", "holi_hipaa_phi_access_total", "holi_hipaa_consent_validations_total",
    "holi_http_requests_total", "holi_http_request_duration_seconds", "holi_http_request_errors_total",
}


def _declared(text: str) -> set[str]:
    """Metric names as the exposition declares them (`# TYPE name kind`): counters keep `_total`."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_carry_every_runbook_name(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            response = await svc.http.get("/metrics", headers=OP)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            families = list(text_string_to_metric_families(text))  # raises on malformed exposition
            assert families
            assert _declared(text) >= RUNBOOK_METRICS, RUNBOOK_METRICS - _declared(text)
            samples = _samples(text)
            assert _value(samples, "holi_queue_jobs_active", queue_name="fhir-sync") == 0
            assert _value(samples, "holi_queue_jobs_waiting", queue_name="fhir-sync") == 0
            assert "_created" not in text  # no series stamped with the system clock

    run_virtual(main)


def test_jobs_and_requests_move_the_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await svc.queue.add("no-such-job", {"record_id": "rec_1"}, job_id="j:rec_1")
            await svc.until_idle()
            await svc.http.get("/fhir/admin/queue/failed", headers=OP)
            await svc.http.post("/fhir/admin/queue/retry/nope", headers=OP)
            await svc.http.get("/fhir/admin/queue/stats")
            samples = _samples((await svc.http.get("/metrics", headers=OP)).text)
            assert _value(samples, "holi_queue_jobs_failed", queue_name="fhir-sync") == 1
            assert _value(samples, "holi_queue_job_errors_total", queue_name="fhir-sync", error_type="NoHandler") == 1
            route = "/fhir/admin/queue/retry/{job_id}"  # the template, never the concrete path
            assert _value(samples, "holi_http_requests_total", method="POST", route=route, status_code="404") == 1
            assert _value(samples, "holi_http_request_errors_total", method="POST", route=route,
                          error_type="client_error") == 1
            assert _value(samples, "holi_http_requests_total", route="/fhir/admin/queue/failed",
                          status_code="200") == 1
            assert _value(samples, "holi_http_requests_total", route="/fhir/admin/queue/stats",
                          status_code="401") == 1
            assert _value(samples, "holi_http_request_duration_seconds_count", route="/fhir/admin/queue/failed") == 1
            assert not any("nope" in str(s.labels) for s in samples)

    run_virtual(main)


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path / "a") as one, service(tmp_path / "b") as two:
            await one.http.get("/fhir/admin/queue/stats", headers=OP)
            one_samples = _samples((await one.http.get("/metrics", headers=OP)).text)
            two_samples = _samples((await two.http.get("/metrics", headers=OP)).text)
            stats = {"route": "/fhir/admin/queue/stats", "status_code": "200"}
            assert _value(one_samples, "holi_http_requests_total", **stats) == 1
            assert _value(two_samples, "holi_http_requests_total", **stats) == 0
        assert REGISTRY.get_sample_value("holi_http_requests_total") is None  # the global registry untouched

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run_virtual(main)


def test_metrics_json(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            body = (await svc.http.get("/metrics/json", headers=OP)).json()
            assert body["success"] is True
            assert body["metrics"]["holi_queue_jobs_active"]["type"] == "gauge"

    run_virtual(main)
