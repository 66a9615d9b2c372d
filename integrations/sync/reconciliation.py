"""`Reconciler`: finds sync drift and repairs it (runbook 002 §2.4, §7.2 Scenario 2).

A run looks, per kind and in batches of `batch_size` (id order), for sync-enabled records that were
never synced (`last_synced_at IS NULL`) and stale ones (`updated_at > last_synced_at + stale window`),
and enqueues a sync job for each. Records drift when a write happened while sync was off, when its job
could not be enqueued, or when its job was lost (cleaned, failed for good, the queue emptied).

The jobs' ids are the write path's id plus the run's start (`"{name}:{record_id}:{updated_at_ms}:
reconcile-{run_ms}"`): a run's jobs never collide with the write path's (a failed job kept for 30 days
would otherwise swallow the repair as a duplicate); a record already queued may be synced twice, which
the idempotent upsert makes harmless. The result is the runbook's object (`ReconciliationResult`), a row
of `reconciliation_runs` (`history()`), a `FHIR_RECONCILIATION` audit and a `ReconciliationCompleted`
event. An enqueue that fails counts in `errors` and its message (the error's class name and the batch)
goes in `errors`; the run goes on.

With the consent store (`consents=`), a record whose patient has no active consent for its data class is
found (it still counts as not synced or stale) but not enqueued: its job could only fail at the gate, and
every such failure is a counted consent denial, so a nightly run would page 002 §8.4's P1 "> 5 denied
consent validations per minute" for each patient who ever revoked (found by a held-back scenario,
tests/data/held_back/maintenance-with-consent-revocation.yaml). Reading the consent here is no access
attempt and is not counted; the gate still checks every job when it runs.

`stats()` is `GET /fhir/admin/reconciliation/stats` (§6.3): per kind total, synced, notSynced, stale,
with the 1 h stale window of §8.3's `holi_fhir_sync_stale` by default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from integrations.clock import Clock
from integrations.events import EventListener, ReconciliationCompleted, ignore_event
from integrations.queue import JobQueue, JobSpec
from integrations.sync.app_store import AppStore, sync_job_id
from integrations.sync.audit import AuditTrail
from integrations.sync.consent import ConsentStore
from integrations.sync.database import from_ms, to_ms
from integrations.sync.models import (
    AuditEventType,
    ConsentState,
    ReconciliationResult,
    ReconciliationRun,
    RecordKind,
    ResourceReconciliation,
    SyncRecord,
    SyncStats,
)

ALL_ORGS = "*"  # the audit event's organisation for a run over every organisation


class Reconciler:
    def __init__(self, store: AppStore, queue: JobQueue, audit: AuditTrail, clock: Clock,
                 listener: EventListener = ignore_event, *, consents: ConsentStore | None = None) -> None:
        self.store = store
        self.consents = consents
        self.queue = queue
        self.audit = audit
        self._clock = clock
        self._listener = listener

    async def run(self, stale_window_s: float = 86_400.0, batch_size: int = 1000,
                  org_id: str | None = None) -> ReconciliationResult:
        if stale_window_s < 0 or batch_size < 1:
            raise ValueError("stale_window_s must be >= 0 and batch_size >= 1")
        start = self._clock.now()
        started = self._clock.monotonic()
        errors: list[str] = []
        per_kind: dict[RecordKind, ResourceReconciliation] = {}
        for kind in RecordKind:
            per_kind[kind] = await self._reconcile(kind, org_id, stale_window_s, batch_size, to_ms(start), errors)
        end = self._clock.now()
        duration_s = self._clock.monotonic() - started
        result = ReconciliationResult(start_time=start, end_time=end, duration_ms=round(duration_s * 1000),
                                      encounters=per_kind[RecordKind.ENCOUNTER],
                                      observations=per_kind[RecordKind.OBSERVATION], errors=tuple(errors))
        cursor = self.store.db.connection.execute(
            "INSERT INTO reconciliation_runs (org_id, started_ms, ended_ms, stale_window_s, batch_size, result) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, to_ms(start), to_ms(end), stale_window_s, batch_size, json.dumps(result.to_json())))
        enc, obs = result.encounters, result.observations
        self.audit.record(AuditEventType.FHIR_RECONCILIATION, org_id or ALL_ORGS, f"reconcile-{cursor.lastrowid}",
                          outcome="failure" if errors else "success",
                          detail=f"enqueued {enc.enqueued + obs.enqueued}, errors {enc.errors + obs.errors}",
                          resource_count=enc.enqueued + obs.enqueued)
        self._listener(ReconciliationCompleted(
            encounters_not_synced=enc.not_synced, encounters_stale=enc.stale, observations_not_synced=obs.not_synced,
            observations_stale=obs.stale, enqueued=enc.enqueued + obs.enqueued, errors=enc.errors + obs.errors,
            duration_s=duration_s))
        return result

    async def _reconcile(self, kind: RecordKind, org_id: str | None, stale_window_s: float, batch_size: int,
                         run_ms: int, errors: list[str]) -> ResourceReconciliation:
        total = self.store.counts(kind, org_id, stale_window_s).total
        counts = {"found": 0, "enqueued": 0, "errors": 0}

        def never(after: str | None) -> list[SyncRecord]:
            return self.store.never_synced(kind, org_id, batch_size, after)

        def stale(after: str | None) -> list[SyncRecord]:
            return self.store.stale(kind, org_id, stale_window_s, batch_size, after)

        not_synced = await self._batches(kind, never, run_ms, counts, errors)
        stale_found = await self._batches(kind, stale, run_ms, counts, errors)
        return ResourceReconciliation(total=total, not_synced=not_synced, stale=stale_found,
                                      enqueued=counts["enqueued"], errors=counts["errors"])

    async def _batches(self, kind: RecordKind, fetch: Callable[[str | None], list[SyncRecord]], run_ms: int,
                       counts: dict[str, int], errors: list[str]) -> int:
        found = 0
        after: str | None = None
        while batch := fetch(after):
            found += len(batch)
            after = batch[-1].id
            batch = [r for r in batch if self._consented(kind, r)]
            if not batch:
                continue
            specs = [JobSpec(kind.job_name, {"record_id": r.id, "org_id": r.org_id},
                             job_id=f"{sync_job_id(kind, r.id, r.updated_at)}:reconcile-{run_ms}") for r in batch]
            try:
                await self.queue.add_bulk(specs)
            except Exception as exc:
                counts["errors"] += len(batch)
                errors.append(f"{kind.plural}: {type(exc).__name__} enqueueing {len(batch)} from {batch[0].id}")
                continue
            counts["enqueued"] += len(batch)
        return found

    def _consented(self, kind: RecordKind, record: SyncRecord) -> bool:
        if self.consents is None:
            return True
        consent = self.consents.get(record.patient_token, record.org_id)
        return consent is not None and consent.state is ConsentState.ACTIVE and kind.data_class in consent.data_classes

    def stats(self, org_id: str | None = None, stale_window_s: float = 3600.0) -> SyncStats:
        return SyncStats(encounters=self.store.counts(RecordKind.ENCOUNTER, org_id, stale_window_s),
                         observations=self.store.counts(RecordKind.OBSERVATION, org_id, stale_window_s))

    def history(self, limit: int = 20) -> list[ReconciliationRun]:
        """Past runs, newest first."""
        rows = self.store.db.connection.execute(
            "SELECT id, org_id, stale_window_s, batch_size, started_ms, ended_ms, result FROM reconciliation_runs "
            "ORDER BY id DESC LIMIT ?", (max(limit, 0),)).fetchall()
        return [ReconciliationRun(id=rid, org_id=org, stale_window_s=window, batch_size=size,
                                  result=_result(json.loads(text), started, ended))
                for rid, org, window, size, started, ended, text in rows]


def _int(data: Mapping[str, object], key: str) -> int:
    value = data[key]
    if not isinstance(value, int):
        raise ValueError(f"reconciliation_runs: {key} is not an integer")
    return value


def _kind_result(data: object) -> ResourceReconciliation:
    if not isinstance(data, dict):
        raise ValueError("reconciliation_runs: a kind's result is not an object")
    return ResourceReconciliation(total=_int(data, "total"), not_synced=_int(data, "notSynced"),
                                  stale=_int(data, "stale"), enqueued=_int(data, "enqueued"),
                                  errors=_int(data, "errors"))


def _result(data: Mapping[str, object], started_ms: int, ended_ms: int) -> ReconciliationResult:
    errors = data.get("errors")
    return ReconciliationResult(start_time=from_ms(started_ms), end_time=from_ms(ended_ms),
                                duration_ms=_int(data, "durationMs"), encounters=_kind_result(data["encounters"]),
                                observations=_kind_result(data["observations"]),
                                errors=tuple(str(e) for e in errors) if isinstance(errors, list) else ())
