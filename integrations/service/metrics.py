"""Prometheus metrics with runbook 002_437ee203264dfa64.txt §8.3's names, in a registry of their own.

Each `ServiceMetrics` has its own `CollectorRegistry` (never prometheus-client's global one): two
services in one process, or one per test, never share a counter. Three sources feed it:

- events (`observe`, an `EventListener`: wire it into the components' listener with `fan_out`): the
  queue's `JobCompleted` (job duration; for `encounter-sync` / `observation-sync` also the sync
  duration), `JobRetryScheduled` / `JobFailed` (job errors); the sync pipeline's `SyncCompleted`
  (operation `create` or `update`) and `SyncFailed` (operation `upsert`, status `failure`, and a sync
  error by class name); `ConsentChecked` (consent validations by status and organisation);
- scrape-time state (`refresh_queue`, `set_sync_drift`, called by `GET /metrics` before rendering):
  the queue gauges from `JobQueue.stats()`, the never-synced and stale gauges from reconciliation stats
  (1 h stale window); the audit events counter from the audit trail itself (`AuditCounts`);
- requests (`HttpMetrics`, an ASGI middleware): count, duration and errors per method, route template
  (`/fhir/admin/queue/retry/{job_id}`, never the concrete path: a patient token stays out of labels)
  and status; a path no route matched is `route="unmatched"`.

| metric                                  | type      | labels                              |
|-----------------------------------------|-----------|-------------------------------------|
| holi_queue_jobs_active / _waiting / _failed | gauge | queue_name                          |
| holi_queue_job_duration_seconds         | histogram | queue_name, job_type                |
| holi_queue_job_errors_total             | counter   | queue_name, error_type              |
| holi_fhir_sync_operations_total         | counter   | resource_type, operation, status    |
| holi_fhir_sync_duration_seconds         | histogram | resource_type, operation            |
| holi_fhir_sync_errors_total             | counter   | resource_type, error_type           |
| holi_fhir_sync_not_synced / _stale      | gauge     | resource_type                       |
| holi_hipaa_audit_events_total           | counter   | event_type, org_id                  |
| holi_hipaa_phi_access_total             | counter   | user_role, access_type, org_id      |
| holi_hipaa_consent_validations_total    | counter   | status, org_id                      |
| holi_http_requests_total                | counter   | method, route, status_code          |
| holi_http_request_duration_seconds      | histogram | method, route, status_code          |
| holi_http_request_errors_total          | counter   | method, route, error_type           |

`waiting` counts the jobs of a paused queue too (they wait for the resume). Durations come from the
injected clock. Labels carry class names, org ids, roles and route templates, never a patient token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.clock import Clock
from integrations.events import (
    ConsentChecked,
    EventListener,
    IntegrationEvent,
    JobCompleted,
    JobFailed,
    JobRetryScheduled,
    SyncCompleted,
    SyncFailed,
)
from integrations.queue import QueueStats

SYNC_JOBS = {"encounter-sync": "Encounter", "observation-sync": "Observation"}
SYNC_OPERATION = "upsert"
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 1.0, 2.5, 5.0)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def _resource(kind: str) -> str:
    """`encounter` -> `Encounter` (the sync events' kinds are RecordKind values)."""
    return kind.capitalize()


def fan_out(*listeners: Callable[[IntegrationEvent], None]) -> EventListener:
    """One listener that calls each of `listeners` in turn."""

    def listen(event: IntegrationEvent) -> None:
        for listener in listeners:
            listener(event)

    return listen


class ServiceMetrics:
    """The service's metrics; see the module docstring."""

    def __init__(self) -> None:
        # `*_created` series carry the system clock's time of each label set's creation: leave them out
        # (process-wide in prometheus-client), so what is exposed depends on the injected clock only.
        cast(Callable[[], None], disable_created_metrics)()  # untyped in prometheus-client
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queue_active = Gauge("holi_queue_jobs_active", "Number of active jobs in the queue",
                                  ["queue_name"], registry=r)
        self.queue_waiting = Gauge("holi_queue_jobs_waiting", "Number of jobs waiting in the queue",
                                   ["queue_name"], registry=r)
        self.queue_failed = Gauge("holi_queue_jobs_failed", "Number of failed jobs kept by the queue",
                                  ["queue_name"], registry=r)
        self.job_duration = Histogram("holi_queue_job_duration_seconds", "Job processing time in seconds",
                                      ["queue_name", "job_type"], buckets=JOB_BUCKETS, registry=r)
        self.job_errors = Counter("holi_queue_job_errors_total", "Failed job attempts",
                                  ["queue_name", "error_type"], registry=r)
        self.sync_operations = Counter("holi_fhir_sync_operations_total", "FHIR sync operations",
                                       ["resource_type", "operation", "status"], registry=r)
        self.sync_duration = Histogram("holi_fhir_sync_duration_seconds", "FHIR sync duration in seconds",
                                       ["resource_type", "operation"], buckets=JOB_BUCKETS, registry=r)
        self.sync_errors = Counter("holi_fhir_sync_errors_total", "FHIR sync errors",
                                   ["resource_type", "error_type"], registry=r)
        self.not_synced = Gauge("holi_fhir_sync_not_synced", "Number of resources that have never been synced",
                                ["resource_type"], registry=r)
        self.stale = Gauge("holi_fhir_sync_stale", "Number of resources changed since their last sync (stale)",
                           ["resource_type"], registry=r)
        self.audit_counts = AuditCounts()
        r.register(self.audit_counts)
        self.phi_access = Counter("holi_hipaa_phi_access_total", "PHI access events",
                                  ["user_role", "access_type", "org_id"], registry=r)
        self.consent_validations = Counter("holi_hipaa_consent_validations_total", "Consent validations",
                                           ["status", "org_id"], registry=r)
        self.http_requests = Counter("holi_http_requests_total", "HTTP requests",
                                     ["method", "route", "status_code"], registry=r)
        self.http_duration = Histogram("holi_http_request_duration_seconds", "HTTP request duration in seconds",
                                       ["method", "route", "status_code"], buckets=HTTP_BUCKETS, registry=r)
        self.http_errors = Counter("holi_http_request_errors_total", "HTTP errors",
                                   ["method", "route", "error_type"], registry=r)

    def __repr__(self) -> str:
        return "ServiceMetrics()"

    # -- events --------------------------------------------------------------------------------------

    def observe(self, event: IntegrationEvent) -> None:
        """An `EventListener`: updates the counters an event moves; other events are ignored."""
        if isinstance(event, JobCompleted):
            self.job_duration.labels(event.queue, event.name).observe(event.duration_s)
            resource = SYNC_JOBS.get(event.name)
            if resource is not None:
                self.sync_duration.labels(resource, SYNC_OPERATION).observe(event.duration_s)
        elif isinstance(event, JobRetryScheduled | JobFailed):
            self.job_errors.labels(event.queue, event.error).inc()
        elif isinstance(event, SyncCompleted):
            operation = "create" if event.created else "update"
            self.sync_operations.labels(_resource(event.kind), operation, "success").inc()
        elif isinstance(event, SyncFailed):
            self.sync_operations.labels(_resource(event.kind), SYNC_OPERATION, "failure").inc()
            self.sync_errors.labels(_resource(event.kind), event.error).inc()
        elif isinstance(event, ConsentChecked):
            self.consent_validations.labels(event.status, event.org_id).inc()

    def observe_phi_access(self, user_role: str, access_type: str, org_id: str) -> None:
        self.phi_access.labels(user_role, access_type, org_id).inc()

    # -- scrape time ---------------------------------------------------------------------------------

    def refresh_queue(self, queue_name: str, stats: QueueStats) -> None:
        self.queue_active.labels(queue_name).set(stats.active)
        self.queue_waiting.labels(queue_name).set(stats.waiting + stats.paused)
        self.queue_failed.labels(queue_name).set(stats.failed)

    def set_sync_drift(self, resource_type: str, not_synced: int, stale: int) -> None:
        self.not_synced.labels(resource_type).set(not_synced)
        self.stale.labels(resource_type).set(stale)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- requests ------------------------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, duration_s: float, error: str | None) -> None:
        code = str(status)
        self.http_requests.labels(method, route, code).inc()
        self.http_duration.labels(method, route, code).observe(duration_s)
        if error is not None:
            self.http_errors.labels(method, route, error).inc()


AuditSource = Callable[[], Mapping[tuple[str, str], int]]


class AuditCounts(Collector):
    """`holi_hipaa_audit_events_total{event_type, org_id}`, read from the audit trail at scrape time: the
    trail is durable and shared by every process that writes to it, so its counts are the true totals
    (and they only grow: nothing deletes an audit event)."""

    def __init__(self) -> None:
        self.source: AuditSource | None = None

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily("holi_hipaa_audit_events", "Audit events logged", labels=["event_type", "org_id"])]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("holi_hipaa_audit_events", "Audit events logged", labels=["event_type", "org_id"])
        if self.source is not None:
            for (event_type, org_id), count in sorted(self.source().items()):
                family.add_metric([event_type, org_id], count)
        return [family]


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class HttpMetrics:
    """ASGI middleware recording every HTTP request in `ServiceMetrics` (timed on the injected clock)."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, clock: Clock) -> None:
        self.app = app
        self._metrics = metrics
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self._clock.monotonic()
        status = 500
        method = str(scope.get("method", "GET"))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        def record(error: str | None) -> None:
            self._metrics.observe_request(method, _route(scope), status, self._clock.monotonic() - started, error)

        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            status = 500
            record(type(exc).__name__)
            raise
        record(None if status < 400 else ("server_error" if status >= 500 else "client_error"))
