"""`AppStore`: the local application store of patient tokens, encounters and observations (runbook 002
§1.3, §2.3, Appendix B), and the write path that enqueues their sync to Medplum.

Each create or update commits first, then enqueues an `encounter-sync` / `observation-sync` job with data
`{"record_id", "org_id"}` and job id `"{name}:{record_id}:{updated_at_ms}"` (runbook §2.3 "Prisma
middleware": non-blocking, never fails the write). An enqueue that fails, times out (`enqueue_timeout_s`
on the clock) or is refused by the enqueue-time consent check (`gate`) emits `SyncEnqueueFailed` and the
write still succeeds: reconciliation finds the record (never synced, or stale). With no queue, or while
`sync_enabled()` is False (`ENABLE_MEDPLUM=false`, a kill switch), nothing is enqueued.

`updated_at` strictly increases per record (at least 1 ms per update), so every update gets a new job id
even at one instant of virtual time. Ingested records (`ingest_*`) are stored with `fhir_sync_enabled`
False and enqueue nothing: what came from another EHR is not sent back (§1.3 "prevent loop").

```python
store = AppStore(db, clock, listener, queue, gate=gate)
store.add_patient_token("pt_abc123", "org_1", "s3://bucket/pt_abc123.enc")
record = await store.create_encounter("org_1", "pt_abc123", EncounterDetails(reason_code="Z00.00"))
```
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, overload

from integrations.clock import Clock
from integrations.events import EventListener, SyncEnqueueFailed, ignore_event
from integrations.queue import JobQueue
from integrations.sync.consent import ConsentGate
from integrations.sync.database import AppDatabase, from_ms, opt_from_ms, to_ms
from integrations.sync.errors import RecordNotFound, UnknownPatientToken, WrongOrganisation
from integrations.sync.models import (
    EncounterDetails,
    EncounterRecord,
    ObservationDetails,
    ObservationRecord,
    PatientToken,
    RecordKind,
    RecordSource,
    ResourceSyncStats,
    SyncRecord,
    check_token,
    iso,
)

_TABLES = {RecordKind.ENCOUNTER: "encounters", RecordKind.OBSERVATION: "observations"}
_COLUMNS = ("id, org_id, patient_token, details, fhir_sync_enabled, source, created_ms, updated_ms, last_synced_ms, "
            "fhir_resource_id, fhir_version")
Details = EncounterDetails | ObservationDetails


def sync_job_id(kind: RecordKind, record_id: str, updated_at: datetime) -> str:
    return f"{kind.job_name}:{record_id}:{to_ms(updated_at)}"


def _dt(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _dump(details: Details) -> str:
    if isinstance(details, EncounterDetails):
        data: dict[str, object] = {"status": details.status, "class_code": details.class_code,
                                   "type_code": details.type_code, "reason_code": details.reason_code,
                                   "start": iso(details.start), "end": iso(details.end), "notes": details.notes}
    else:
        data = {"code": details.code, "status": details.status, "code_system": details.code_system,
                "value": details.value, "unit": details.unit, "effective": iso(details.effective),
                "notes": details.notes}
    return json.dumps(data, sort_keys=True)


def _load(kind: RecordKind, text: str) -> Details:
    d: dict[str, Any] = json.loads(text)
    if kind is RecordKind.ENCOUNTER:
        return EncounterDetails(status=d["status"], class_code=d["class_code"], type_code=d["type_code"],
                                reason_code=d["reason_code"], start=_dt(d["start"]), end=_dt(d["end"]),
                                notes=d["notes"])
    return ObservationDetails(code=d["code"], status=d["status"], code_system=d["code_system"], value=d["value"],
                              unit=d["unit"], effective=_dt(d["effective"]), notes=d["notes"])


_Row = tuple[str, str, str, str, int, str, int, int, int | None, str | None, str | None]


def _record(kind: RecordKind, row: _Row) -> SyncRecord:
    rid, org, token, details, enabled, source, created, updated, synced, fhir_id, version = row
    src: RecordSource = "ingress" if source == "ingress" else "app"
    common: dict[str, Any] = dict(id=rid, org_id=org, patient_token=token, fhir_sync_enabled=bool(enabled),
                                  created_at=from_ms(created), updated_at=from_ms(updated),
                                  last_synced_at=opt_from_ms(synced), fhir_resource_id=fhir_id, fhir_version=version,
                                  source=src)
    loaded = _load(kind, details)
    if isinstance(loaded, EncounterDetails):
        return EncounterRecord(details=loaded, **common)
    return ObservationRecord(details=loaded, **common)


class AppStore:
    def __init__(self, db: AppDatabase, clock: Clock, listener: EventListener = ignore_event,
                 enqueue: JobQueue | None = None, *, gate: ConsentGate | None = None,
                 sync_enabled: Callable[[], bool] | None = None, enqueue_timeout_s: float = 2.0) -> None:
        self.db = db
        self.queue = enqueue
        self.gate = gate
        self._clock = clock
        self._listener = listener
        self._sync_enabled = sync_enabled or (lambda: True)
        self._enqueue_timeout_s = enqueue_timeout_s

    # -- patient tokens ------------------------------------------------------------------------------------

    def add_patient_token(self, token: str, org_id: str, encrypted_payload_uri: str) -> PatientToken:
        """Register a patient token of an organisation (again with the same organisation: no change)."""
        check_token(token)
        existing = self.patient_token(token)
        if existing is not None:
            if existing.org_id != org_id:
                raise WrongOrganisation(f"patient token {token!r}", org_id)
            return existing
        self.db.connection.execute(
            "INSERT INTO patient_tokens (token, org_id, encrypted_payload_uri, created_ms) VALUES (?, ?, ?, ?)",
            (token, org_id, encrypted_payload_uri, to_ms(self._clock.now())))
        found = self.patient_token(token)
        assert found is not None
        return found

    def patient_token(self, token: str) -> PatientToken | None:
        row = self.db.connection.execute(
            "SELECT org_id, encrypted_payload_uri, created_ms, fhir_synced_ms FROM patient_tokens WHERE token = ?",
            (token,)).fetchone()
        if row is None:
            return None
        org, uri, created, synced = row
        return PatientToken(token=token, org_id=org, encrypted_payload_uri=uri, created_at=from_ms(created),
                            fhir_synced_at=opt_from_ms(synced))

    def require_patient(self, token: str, org_id: str) -> PatientToken:
        """The token, if it belongs to `org_id`: else `UnknownPatientToken` / `WrongOrganisation`."""
        found = self.patient_token(token)
        if found is None:
            raise UnknownPatientToken(token)
        if found.org_id != org_id:
            raise WrongOrganisation(f"patient token {token!r}", org_id)
        return found

    def mark_patient_synced(self, token: str, at: datetime) -> None:
        self.db.connection.execute("UPDATE patient_tokens SET fhir_synced_ms = ? WHERE token = ?", (to_ms(at), token))

    def has_encounter(self, patient_token: str, org_id: str) -> bool:
        """Whether the organisation holds an encounter of the patient (a CLINICIAN's export right, §6.2)."""
        row = self.db.connection.execute("SELECT 1 FROM encounters WHERE patient_token = ? AND org_id = ? LIMIT 1",
                                         (patient_token, org_id)).fetchone()
        return row is not None

    # -- writes ------------------------------------------------------------------------------------------

    async def create_encounter(self, org_id: str, patient_token: str, details: EncounterDetails, *,
                               fhir_sync_enabled: bool = True) -> EncounterRecord:
        record = self._insert(RecordKind.ENCOUNTER, org_id, patient_token, details, fhir_sync_enabled, "app", None)
        assert isinstance(record, EncounterRecord)
        await self._enqueue(record)
        return record

    async def update_encounter(self, record_id: str, details: EncounterDetails) -> EncounterRecord:
        record = self._update(RecordKind.ENCOUNTER, record_id, details)
        assert isinstance(record, EncounterRecord)
        await self._enqueue(record)
        return record

    async def create_observation(self, org_id: str, patient_token: str, details: ObservationDetails, *,
                                 fhir_sync_enabled: bool = True) -> ObservationRecord:
        record = self._insert(RecordKind.OBSERVATION, org_id, patient_token, details, fhir_sync_enabled, "app", None)
        assert isinstance(record, ObservationRecord)
        await self._enqueue(record)
        return record

    async def update_observation(self, record_id: str, details: ObservationDetails) -> ObservationRecord:
        record = self._update(RecordKind.OBSERVATION, record_id, details)
        assert isinstance(record, ObservationRecord)
        await self._enqueue(record)
        return record

    def ingest_encounter(self, org_id: str, patient_token: str, details: EncounterDetails, *,
                         external_id: str | None = None) -> EncounterRecord:
        """Store an encounter that came from another EHR: sync disabled, no job."""
        record = self._insert(RecordKind.ENCOUNTER, org_id, patient_token, details, False, "ingress", external_id)
        assert isinstance(record, EncounterRecord)
        return record

    def ingest_observation(self, org_id: str, patient_token: str, details: ObservationDetails, *,
                           external_id: str | None = None) -> ObservationRecord:
        record = self._insert(RecordKind.OBSERVATION, org_id, patient_token, details, False, "ingress", external_id)
        assert isinstance(record, ObservationRecord)
        return record

    def _insert(self, kind: RecordKind, org_id: str, patient_token: str, details: Details, enabled: bool,
                source: RecordSource, external_id: str | None) -> SyncRecord:
        self.require_patient(patient_token, org_id)
        table = _TABLES[kind]
        now = to_ms(self._clock.now())
        with self.db.transaction() as db:
            (seq,) = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()
            record_id = f"{kind.id_prefix}_{seq:010d}"
            db.execute(f"INSERT INTO {table} (seq, id, org_id, patient_token, details, fhir_sync_enabled, source, "
                       "external_id, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, record_id, org_id, patient_token, _dump(details), int(enabled), source, external_id,
                        now, now))
        return self._require(kind, record_id)

    def _update(self, kind: RecordKind, record_id: str, details: Details) -> SyncRecord:
        table = _TABLES[kind]
        now = to_ms(self._clock.now())
        with self.db.transaction() as db:
            changed = db.execute(f"UPDATE {table} SET details = ?, updated_ms = MAX(?, updated_ms + 1) WHERE id = ?",
                                 (_dump(details), now, record_id)).rowcount
        if not changed:
            raise RecordNotFound(kind.value, record_id)
        return self._require(kind, record_id)

    async def _enqueue(self, record: SyncRecord) -> None:
        if self.queue is None or not record.fhir_sync_enabled or not self._sync_enabled():
            return
        try:
            if self.gate is not None:
                decision = self.gate.check(record.patient_token, record.org_id, record.kind.data_class)
                if not decision.allowed:
                    self._listener(SyncEnqueueFailed(kind=record.kind.value, record_id=record.id,
                                                     error="ConsentDenied"))
                    return
            async with self._clock.timeout(self._enqueue_timeout_s):
                await self.queue.add(record.kind.job_name, {"record_id": record.id, "org_id": record.org_id},
                                     job_id=sync_job_id(record.kind, record.id, record.updated_at))
        except Exception as exc:  # never fail the write: reconciliation will find the record
            self._listener(SyncEnqueueFailed(kind=record.kind.value, record_id=record.id, error=type(exc).__name__))

    # -- reads and sync bookkeeping ---------------------------------------------------------------------------

    @overload
    def get(self, kind: Literal[RecordKind.ENCOUNTER], record_id: str) -> EncounterRecord | None: ...
    @overload
    def get(self, kind: Literal[RecordKind.OBSERVATION], record_id: str) -> ObservationRecord | None: ...
    @overload
    def get(self, kind: RecordKind, record_id: str) -> SyncRecord | None: ...

    def get(self, kind: RecordKind, record_id: str) -> SyncRecord | None:
        row = self.db.connection.execute(f"SELECT {_COLUMNS} FROM {_TABLES[kind]} WHERE id = ?",
                                         (record_id,)).fetchone()
        return None if row is None else _record(kind, row)

    def _require(self, kind: RecordKind, record_id: str) -> SyncRecord:
        record = self.get(kind, record_id)
        if record is None:
            raise RecordNotFound(kind.value, record_id)
        return record

    def mark_synced(self, kind: RecordKind, record_id: str, fhir_resource_id: str, fhir_version: str | None,
                    at: datetime) -> None:
        changed = self.db.connection.execute(
            f"UPDATE {_TABLES[kind]} SET fhir_resource_id = ?, fhir_version = ?, last_synced_ms = ? WHERE id = ?",
            (fhir_resource_id, fhir_version, to_ms(at), record_id)).rowcount
        if not changed:
            raise RecordNotFound(kind.value, record_id)

    def set_sync_enabled(self, kind: RecordKind, record_id: str, enabled: bool) -> None:
        changed = self.db.connection.execute(f"UPDATE {_TABLES[kind]} SET fhir_sync_enabled = ? WHERE id = ?",
                                             (int(enabled), record_id)).rowcount
        if not changed:
            raise RecordNotFound(kind.value, record_id)

    def _select(self, kind: RecordKind, condition: str, args: tuple[object, ...], org_id: str | None,
                batch_size: int, after_id: str | None) -> list[SyncRecord]:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        rows = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM {_TABLES[kind]} WHERE fhir_sync_enabled = 1 AND {condition} "
            "AND (? IS NULL OR org_id = ?) AND id > ? ORDER BY id LIMIT ?",
            (*args, org_id, org_id, after_id or "", batch_size)).fetchall()
        return [_record(kind, row) for row in rows]

    def never_synced(self, kind: RecordKind, org_id: str | None = None, batch_size: int = 1000,
                     after_id: str | None = None) -> list[SyncRecord]:
        """Sync-enabled records never synced (`last_synced_at IS NULL`), in id order after `after_id`."""
        return self._select(kind, "last_synced_ms IS NULL", (), org_id, batch_size, after_id)

    def stale(self, kind: RecordKind, org_id: str | None = None, stale_window_s: float = 86_400.0,
              batch_size: int = 1000, after_id: str | None = None) -> list[SyncRecord]:
        """Sync-enabled records with `updated_at > last_synced_at + stale_window_s` (runbook 002 §2.4)."""
        return self._select(kind, "last_synced_ms IS NOT NULL AND updated_ms > last_synced_ms + ?",
                            (round(stale_window_s * 1000),), org_id, batch_size, after_id)

    def counts(self, kind: RecordKind, org_id: str | None = None,
               stale_window_s: float = 3600.0) -> ResourceSyncStats:
        """Sync-enabled records: total, synced (and not stale), never synced, stale (runbook 002 §6.3)."""
        total, not_synced, stale = self.db.connection.execute(
            f"SELECT COUNT(*), COALESCE(SUM(last_synced_ms IS NULL), 0), "
            f"COALESCE(SUM(last_synced_ms IS NOT NULL AND updated_ms > last_synced_ms + ?), 0) "
            f"FROM {_TABLES[kind]} WHERE fhir_sync_enabled = 1 AND (? IS NULL OR org_id = ?)",
            (round(stale_window_s * 1000), org_id, org_id)).fetchone()
        return ResourceSyncStats(total=int(total), synced=int(total) - int(not_synced) - int(stale),
                                 not_synced=int(not_synced), stale=int(stale))

    def records_of(self, patient_token: str, org_id: str, kind: RecordKind) -> list[SyncRecord]:
        rows = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM {_TABLES[kind]} WHERE patient_token = ? AND org_id = ? ORDER BY id",
            (patient_token, org_id)).fetchall()
        return [_record(kind, row) for row in rows]
