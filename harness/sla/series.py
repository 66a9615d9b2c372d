"""The series SLA bands and alert rules are computed from, each derived from journal events only.

Shapes:
- `window`: a value over the events of a range `(t - window, t]` (a ratio, an average, a p95, a rate
  per minute, a count), like PromQL's `rate(x[1m])`; a band takes it over the whole scope at once.
- `gauge`: a value at an instant (queue depth rebuilt from job events, the last reconciliation's
  counts, the age of the last audit mirror run).
- `measure`: one value per occurrence (each queue pause's drain time, each staged recovery's soak).
- `state`: a state at an instant (a breaker's).

`SERIES` names them; `harness.sla.data.SeriesData` computes them over one journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.sla.conditions import Unit

Shape = Literal["window", "gauge", "measure", "state"]

#: Workload operations that write (runbook 000 §7 "Write Success Rate"): named by their verb.
WRITE_PREFIXES = ("create_", "update_", "delete_", "patch_", "submit_", "write_")


def is_write(operation: str) -> bool:
    return operation.startswith(WRITE_PREFIXES)


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    name: str
    shape: Shape
    unit: Unit | Literal["state"]
    vendor_scoped: bool
    description: str

    def unit_numeric(self) -> Unit:
        if self.unit == "state":
            raise ValueError(f"series {self.name!r} is a series of states, not numbers")
        return self.unit


_SPECS = [
    SeriesSpec("operation_success_ratio", "window", "ratio", True,
               "share of workload operations (`operation`) that succeeded"),
    SeriesSpec("operation_error_ratio", "window", "ratio", True, "share of workload operations that failed"),
    SeriesSpec("write_success_ratio", "window", "ratio", True,
               "share of write operations (create_/update_/delete_...) that succeeded"),
    SeriesSpec("operation_latency_avg_ms", "window", "ms", True, "mean duration of successful operations"),
    SeriesSpec("operation_latency_p95_ms", "window", "ms", True,
               "p95 (nearest rank) duration of successful operations"),
    SeriesSpec("request_5xx_ratio", "window", "ratio", True,
               "share of the integration's HTTP requests (`request`) answered 5xx"),
    SeriesSpec("request_latency_p95_ms", "window", "ms", True, "p95 duration of HTTP requests"),
    SeriesSpec("consent_denied_per_min", "window", "per_min", False,
               "`consent.checked` with status denied, per minute"),
    SeriesSpec("fhir_sync_errors_per_min", "window", "per_min", False, "`fhir_sync.failed` per minute"),
    SeriesSpec("queue_job_errors_per_min", "window", "per_min", False,
               "failed job attempts (`job.retry`, `job.failed`) per minute"),
    SeriesSpec("queue_job_duration_p95_s", "window", "s", False, "p95 duration of completed jobs"),
    SeriesSpec("fhir_sync_duration_p95_s", "window", "s", False,
               "p95 duration of completed sync jobs (`*-sync`)"),
    SeriesSpec("queue_store_unavailable", "window", "count", False, "`queue.store_unavailable` events"),
    SeriesSpec("reconciliation_failures", "window", "count", False, "reconciliation runs with errors > 0"),
    SeriesSpec("audit_mirror_errors", "window", "count", False, "errors of audit mirror runs, summed"),
    SeriesSpec("queue_failed_jobs", "gauge", "count", False, "jobs in the failed state (rebuilt from job.*)"),
    SeriesSpec("queue_waiting_jobs", "gauge", "count", False, "jobs waiting (not delayed, not active)"),
    SeriesSpec("queue_active_jobs", "gauge", "count", False, "jobs a worker holds"),
    SeriesSpec("fhir_sync_not_synced", "gauge", "count", False,
               "records never synced, per the last reconciliation (encounters + observations)"),
    SeriesSpec("fhir_sync_stale", "gauge", "count", False,
               "records stale, per the last reconciliation (encounters + observations)"),
    SeriesSpec("audit_mirror_age_s", "gauge", "s", False, "time since the last audit mirror run"),
    SeriesSpec("queue_drain_s", "measure", "s", False,
               "per queue pause: time until no job is active (undrained: until the pause ends)"),
    SeriesSpec("staged_recovery_read_soak_s", "measure", "s", True,
               "per re-enabling of `<vendor>_fhir_write`: time since `<vendor>_fhir_read_only` was re-enabled"),
    SeriesSpec("breaker_state", "state", "state", True, "the breaker's state (`breaker.transition`)"),
]
SERIES: dict[str, SeriesSpec] = {spec.name: spec for spec in _SPECS}
