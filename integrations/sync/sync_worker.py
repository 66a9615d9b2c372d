"""`SyncService`: the handlers of the `encounter-sync` and `observation-sync` jobs (runbook 002 §1.3
"Outbound Sync", §2.1, §3): consent, de-identified mapping, upsert to Medplum with `If-Match`,
`last_synced_at`, an audit event with a correlation id.

Per job (data `{"record_id", "org_id"}`):

1. Load the record (gone, or of another organisation: the job fails at once, `UnrecoverableJobError`).
   A record whose sync was disabled since the job was enqueued is skipped (the job completes).
2. Check consent again, now: the job may have waited while consent was revoked. Refused: a
   `FHIR_SYNC_FAILED` audit (outcome `denied`), `SyncFailed(error="ConsentDenied")` and
   `UnrecoverableJobError("ConsentDenied (...): <reason>")`, so the queue fails the job without retrying
   it and nothing reaches Medplum.
3. Upsert the de-identified Patient (`deid.patient_resource`; refused outright if `deid.phi_violations`
   finds anything), once per token (`PatientToken.fhir_synced_at`).
4. Upsert the Encounter / Observation: `PUT` with `If-Match: W/"<fhir_version>"` once the record has a
   version (a first sync is a plain `PUT`, which creates at the client-assigned id), with an
   `on_conflict` merge that re-applies the local record (the application is the source of truth).
5. `mark_synced` (FHIR id, version, `last_synced_at`), a `FHIR_SYNC` audit, `SyncCompleted`.

Any other failure (Medplum down, timeouts, a 4xx): a `FHIR_SYNC_FAILED` audit with the error's class
name, `SyncFailed`, and the exception goes on to the queue, which retries with backoff. Handlers are
idempotent (an upsert of the same record), as at-least-once delivery needs.

The correlation id is `sync-{job id}#{attempt}`: built from the job id (a kind, a record id, a time),
so an operator can follow one attempt from the queue's failed-job listing to the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.clock import Clock
from integrations.events import EventListener, SyncCompleted, SyncFailed, ignore_event
from integrations.fhir import FhirConnector
from integrations.fhir.models import FhirResource, JsonValue
from integrations.queue import Handler, Job, UnrecoverableJobError
from integrations.sync import deid
from integrations.sync.app_store import AppStore
from integrations.sync.audit import AuditTrail
from integrations.sync.consent import ConsentGate
from integrations.sync.errors import RecordNotFound
from integrations.sync.models import AuditEventType, RecordKind, SyncRecord


class SyncService:
    def __init__(self, store: AppStore, gate: ConsentGate, audit: AuditTrail, connector: FhirConnector, clock: Clock,
                 listener: EventListener = ignore_event) -> None:
        self.store = store
        self.gate = gate
        self.audit = audit
        self.connector = connector
        self._clock = clock
        self._listener = listener

    def handlers(self) -> dict[str, Handler]:
        async def encounter(job: Job) -> JsonValue:
            return await self.sync(RecordKind.ENCOUNTER, job)

        async def observation(job: Job) -> JsonValue:
            return await self.sync(RecordKind.OBSERVATION, job)

        return {RecordKind.ENCOUNTER.job_name: encounter, RecordKind.OBSERVATION.job_name: observation}

    async def sync(self, kind: RecordKind, job: Job) -> JsonValue:
        record_id, org_id = _job_data(job)
        correlation_id = f"sync-{job.id}#{job.attempt}"
        record = self.store.get(kind, record_id)
        if record is None or record.org_id != org_id:
            self._failed(kind, record_id, org_id, correlation_id, "RecordNotFound", "failure")
            raise UnrecoverableJobError(RecordNotFound(kind.value, record_id).detail)
        if not record.fhir_sync_enabled:
            return {"skipped": "sync disabled"}
        decision = self.gate.check(record.patient_token, record.org_id, kind.data_class, correlation_id=correlation_id)
        if not decision.allowed:
            self._failed(kind, record_id, org_id, correlation_id, "ConsentDenied", "denied",
                         detail=f"ConsentDenied: {decision.reason}", patient_token=record.patient_token)
            raise UnrecoverableJobError(f"ConsentDenied ({decision.status}): {decision.reason}")
        try:
            await self._upsert_patient(record)
            written = await self._upsert(record)
        except Exception as exc:
            self._failed(kind, record_id, org_id, correlation_id, type(exc).__name__, "failure",
                         patient_token=record.patient_token)
            raise
        created = record.fhir_version is None
        self.store.mark_synced(kind, record_id, written.id, written.version_id, self._clock.now())
        self.audit.record(AuditEventType.FHIR_SYNC, org_id, correlation_id, resource_type=kind.resource_type,
                          resource_id=record_id, detail="created" if created else "updated")
        self._listener(SyncCompleted(kind=kind.value, record_id=record_id, correlation_id=correlation_id,
                                     created=created, patient_token=record.patient_token))
        return {"fhirResourceId": written.id, "versionId": written.version_id, "created": created}

    def _failed(self, kind: RecordKind, record_id: str, org_id: str, correlation_id: str, error: str,
                outcome: str, detail: str | None = None, patient_token: str | None = None) -> None:
        self.audit.record(AuditEventType.FHIR_SYNC_FAILED, org_id, correlation_id, resource_type=kind.resource_type,
                          resource_id=record_id, outcome="denied" if outcome == "denied" else "failure",
                          detail=detail or error)
        self._listener(SyncFailed(kind=kind.value, record_id=record_id, correlation_id=correlation_id, error=error,
                                  patient_token=patient_token))

    async def _upsert_patient(self, record: SyncRecord) -> None:
        token = self.store.require_patient(record.patient_token, record.org_id)
        if token.fhir_synced_at is not None:
            return
        patient = deid.patient_resource(token.token, token.encrypted_payload_uri)
        if deid.phi_violations(patient):
            raise UnrecoverableJobError("the Patient mapping is not de-identified")
        await self.connector.update(patient)
        self.store.mark_patient_synced(token.token, self._clock.now())

    async def _upsert(self, record: SyncRecord) -> FhirResource:
        resource = deid.record_resource(record)

        def merge(current: FhirResource) -> Mapping[str, JsonValue]:
            return resource  # the local record wins: it is the source of truth

        return await self.connector.update(resource, if_match=record.fhir_version, on_conflict=merge)


def _job_data(job: Job) -> tuple[str, str]:
    data = job.data
    if isinstance(data, dict):
        record_id, org_id = data.get("record_id"), data.get("org_id")
        if isinstance(record_id, str) and isinstance(org_id, str):
            return record_id, org_id
    raise UnrecoverableJobError("job data must be {record_id, org_id}")
