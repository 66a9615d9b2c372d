"""The sync pipeline (runbook 002_437ee203264dfa64.txt §1.3, §2.3-§2.4, §3, §6.1-§6.3): consent gate,
de-identified mapping, local application store, sync worker, reconciliation, audit trail, ingress and
export, all on one SQLite application database and the injected clock.

```python
db = AppDatabase("app.db", clock)
consents = ConsentStore(db)
gate = ConsentGate(consents, clock, listener)                         # §3.2, counted per org
audit = AuditTrail(db, clock, listener)                               # §3.3
queue = JobQueue(SqliteStore("queue.db", "fhir-sync"), clock, listener=listener)   # §2.2
store = AppStore(db, clock, listener, queue, gate=gate)               # §2.3: writes enqueue, never fail

store.add_patient_token("pt_abc123", "org_1", "s3://bucket/pt_abc123.enc")
consents.grant("pt_abc123", "org_1", [DataClass.CLINICAL_NOTES, DataClass.LAB_RESULTS, DataClass.MEDICATIONS])
await store.create_observation("org_1", "pt_abc123", ObservationDetails(code="8310-5", value=37.2, unit="Cel"))

sync = SyncService(store, gate, audit, medplum.connector, clock, listener)          # §1.3 outbound, §3.1
async with Worker(queue, sync.handlers(), rng=rng):                   # encounter-sync, observation-sync
    ...
reconciler = Reconciler(store, queue, audit, clock, listener)         # §2.4
result = await reconciler.run(stale_window_s=86_400, batch_size=1000)  # result.to_json(): §2.4's shape
reconciler.stats().to_json()                                          # §6.3 reconciliation/stats
Ingress(store, audit, clock).ingest(resource, "org_1", "user_1")      # §6.1, stored with sync disabled
await Exporter(store, gate, audit, medplum.connector, clock).export_everything(
    "pt_abc123", Requester("user_1", "org_1", Role.CLINICIAN))        # §6.2 RBAC + consent
```

Modules: `errors` (the tree), `models` (typed model and the runbook's result shapes), `database`
(`AppDatabase`), `consent`, `deid`, `app_store`, `audit`, `sync_worker`, `reconciliation`, `ingress`,
`export`, and `audit_mirror` (§2.6, Medplum's AuditEvents mirrored locally).

Nothing here writes PHI anywhere but the local records: events (`integrations.events`), audit rows and
error messages carry kinds, record ids, patient tokens, organisation ids, correlation ids, counts and
class names only, and Medplum receives only the de-identified mapping (`deid`).
"""

from integrations.sync.app_store import AppStore, sync_job_id
from integrations.sync.audit import AuditTrail
from integrations.sync.consent import ConsentGate, ConsentStore
from integrations.sync.database import AppDatabase
from integrations.sync.deid import (
    encounter_resource,
    fhir_id,
    observation_resource,
    patient_reference,
    patient_resource,
    phi_violations,
)
from integrations.sync.errors import (
    ConsentDenied,
    ExportForbidden,
    InvalidResource,
    RecordNotFound,
    SyncError,
    UnknownPatientToken,
    WrongOrganisation,
)
from integrations.sync.export import Exporter
from integrations.sync.ingress import Ingress
from integrations.sync.models import (
    EXPORT_DATA_CLASSES,
    AuditEventType,
    AuditRecord,
    BatchItem,
    BatchResult,
    Consent,
    ConsentCounts,
    ConsentDecision,
    ConsentState,
    ConsentTally,
    DataClass,
    EncounterDetails,
    EncounterRecord,
    ExportRecord,
    IngressResult,
    ObservationDetails,
    ObservationRecord,
    PatientToken,
    Purpose,
    ReconciliationResult,
    ReconciliationRun,
    RecordKind,
    Requester,
    ResourceReconciliation,
    ResourceSyncStats,
    Role,
    SyncRecord,
    SyncStats,
)
from integrations.sync.reconciliation import Reconciler
from integrations.sync.sync_worker import SyncService

__all__ = [
    "EXPORT_DATA_CLASSES",
    "AppDatabase",
    "AppStore",
    "AuditEventType",
    "AuditRecord",
    "AuditTrail",
    "BatchItem",
    "BatchResult",
    "Consent",
    "ConsentCounts",
    "ConsentDecision",
    "ConsentDenied",
    "ConsentGate",
    "ConsentState",
    "ConsentStore",
    "ConsentTally",
    "DataClass",
    "EncounterDetails",
    "EncounterRecord",
    "ExportForbidden",
    "ExportRecord",
    "Exporter",
    "Ingress",
    "IngressResult",
    "InvalidResource",
    "ObservationDetails",
    "ObservationRecord",
    "PatientToken",
    "Purpose",
    "Reconciler",
    "ReconciliationResult",
    "ReconciliationRun",
    "RecordKind",
    "RecordNotFound",
    "Requester",
    "ResourceReconciliation",
    "ResourceSyncStats",
    "Role",
    "SyncError",
    "SyncRecord",
    "SyncService",
    "SyncStats",
    "UnknownPatientToken",
    "WrongOrganisation",
    "encounter_resource",
    "fhir_id",
    "observation_resource",
    "patient_reference",
    "patient_resource",
    "phi_violations",
    "sync_job_id",
]
