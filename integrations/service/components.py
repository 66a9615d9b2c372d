"""`ServiceComponents`: the objects the service's routes operate, built by the caller and handed in.

The service builds nothing itself: `ehrlab service` (harness/service_cmd.py) and the tests wire a
connector, queue, worker, monitor, flags and the sync pipeline, then pass them to `create_service`.
Time comes from `clock` (the injected `Clock`), everywhere, request timing included.

Optional parts leave their routes out: without a reconciler there is no `/fhir/admin/reconciliation/*`,
without an ingress no `/fhir/inbound/*`, without an audit mirror no `/fhir/admin/audit-mirror/*`, and so
on; nothing is stubbed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from integrations.clock import Clock
from integrations.queue import JobQueue
from integrations.resilience import FeatureFlags, ResilientFhirClient
from integrations.service.metrics import ServiceMetrics
from integrations.sync.app_store import AppStore
from integrations.sync.audit import AuditTrail
from integrations.sync.audit_mirror import AuditMirror
from integrations.sync.consent import ConsentGate
from integrations.sync.database import AppDatabase
from integrations.sync.export import Exporter
from integrations.sync.ingress import Ingress
from integrations.sync.reconciliation import Reconciler


@dataclass(slots=True)
class Startup:
    """Set `complete` once everything is started (worker, monitors): `/health/startup` and `/health/ready`
    answer 503 until then."""

    complete: bool = False

    def mark_complete(self) -> None:
        self.complete = True


@dataclass(frozen=True, slots=True)
class ServiceComponents:
    clock: Clock
    queue: JobQueue
    flags: FeatureFlags
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    providers: Mapping[str, ResilientFhirClient] = field(default_factory=dict)  # vendor -> client
    database: AppDatabase | None = None
    store: AppStore | None = None
    consent: ConsentGate | None = None
    audit: AuditTrail | None = None
    reconciler: Reconciler | None = None
    ingress: Ingress | None = None
    exporter: Exporter | None = None
    audit_mirror: AuditMirror | None = None
    startup: Startup = field(default_factory=Startup)


