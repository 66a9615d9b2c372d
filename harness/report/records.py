"""Which records a run lost, from the journal: data loss counts records, not failed jobs.

A job that failed for good is not data loss by itself: the record it carried is lost only when no later sync
wrote it (a later job for the same record, an operator's retry, reconciliation's re-queue all end in a
`fhir_sync.completed` for that record). Read from the journal only:

- a job's record: the sync worker's `fhir_sync.*` events name the record (`resource`, `record_id`) and the
  attempt (`correlation_id` = `sync-<job id>#<attempt>`, `integrations.sync.sync_worker`);
- a job's fate: its `job.*` events (`harness.report.series.final_job_states`); the moment it failed for good
  is its last `job.failed` (or `job.stalled` with `failed`);
- a record's later sync: a `fhir_sync.completed` for the same record after that moment (journal order);
- a record that could not be enqueued (`fhir_sync.enqueue_failed`) is lost the same way unless a later sync
  wrote it.

Consent refusals (`ConsentDenied`, runbook 002 §3.2) are consent enforced, not loss: those jobs and enqueues
are counted apart. A failed job that no `fhir_sync` event ties to a record (its worker died before the
handler ran, or a job of another kind) cannot be shown synced: it counts as one lost record of unknown id.
Record ids are the application's pseudonymous ids (as the journal carries them): never a patient's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.journal import Event, FhirSyncEvent, JobEvent
from harness.report.series import final_job_states

CONSENT_REFUSED = "ConsentDenied"  # integrations.sync.sync_worker: SyncFailed(error="ConsentDenied")


@dataclass(frozen=True, slots=True)
class LostRecord:
    resource: str  # "encounter", "observation"; "unknown" when no sync event named the job's record
    record_id: str  # the record id, or the job id when the record is unknown
    how: str  # "job <id> failed for good (<error>)", "could not be enqueued (<error>)"
    t: float
    via: Literal["job", "enqueue"] = "job"


@dataclass(frozen=True, slots=True)
class RecordAccount:
    """What became of the records the run's jobs carried."""

    jobs: int  # jobs added, less those refused for consent
    jobs_failed: int  # failed for good, less those refused for consent
    jobs_unfinished: int  # waiting, delayed or active at the end (still in the durable queue: not lost)
    consent_refused: int  # jobs failed and enqueues refused because consent was refused (002 §3.2)
    resynced: int  # jobs failed for good whose record a later sync wrote
    lost: tuple[LostRecord, ...]  # one per record, in the order they were lost

    @property
    def unknown(self) -> int:
        """Lost jobs whose record no sync event named."""
        return sum(1 for r in self.lost if r.resource == "unknown")

    @property
    def unqueued(self) -> int:
        """Records lost because they could not be enqueued (and no later sync wrote them)."""
        return sum(1 for r in self.lost if r.via == "enqueue")


def _job_of(correlation_id: str | None) -> str | None:
    if not correlation_id or not correlation_id.startswith("sync-"):
        return None
    return correlation_id.removeprefix("sync-").rsplit("#", 1)[0]


def account(events: Sequence[Event]) -> RecordAccount:
    record_of: dict[str, tuple[str, str]] = {}
    refused: set[str] = set()
    failed_at: dict[str, tuple[int, float, str]] = {}  # job id -> (index, t, error) of its last failure
    synced_at: dict[tuple[str, str], int] = {}  # record -> index of its last completed sync
    unqueued: list[tuple[int, FhirSyncEvent]] = []
    refused_enqueues = 0
    for index, event in enumerate(events):
        if isinstance(event, FhirSyncEvent):
            record = (event.resource, event.record_id)
            job_id = _job_of(event.correlation_id)
            if job_id is not None:
                record_of.setdefault(job_id, record)
            if event.kind == "fhir_sync.completed":
                synced_at[record] = index
            elif event.error == CONSENT_REFUSED:
                if job_id is not None:
                    refused.add(job_id)
                else:
                    refused_enqueues += 1
            elif event.kind == "fhir_sync.enqueue_failed":
                unqueued.append((index, event))
        elif isinstance(event, JobEvent) and (event.kind == "job.failed"
                                              or (event.kind == "job.stalled" and event.failed)):
            failed_at[event.job_id] = (index, event.t, event.error or "stalled")
    states = {key: state for key, state in final_job_states(events).items() if key[1] not in refused}
    lost: dict[tuple[str, str], LostRecord] = {}
    resynced = 0
    for (_, job_id), state in states.items():
        if state != "failed":
            continue
        index, t, error = failed_at.get(job_id, (len(events), 0.0, "unknown"))
        carried = record_of.get(job_id)
        if carried is None:
            lost[("unknown", job_id)] = LostRecord("unknown", job_id, f"job {job_id} failed for good ({error})", t)
        elif synced_at.get(carried, -1) > index:
            resynced += 1
        elif carried not in lost:
            lost[carried] = LostRecord(carried[0], carried[1], f"job {job_id} failed for good ({error})", t)
    for index, event in unqueued:
        record = (event.resource, event.record_id)
        if synced_at.get(record, -1) < index and record not in lost:
            lost[record] = LostRecord(record[0], record[1], f"could not be enqueued ({event.error or 'unknown'})",
                                      event.t, via="enqueue")
    return RecordAccount(
        jobs=len(states), jobs_failed=sum(1 for s in states.values() if s == "failed"),
        jobs_unfinished=sum(1 for s in states.values() if s in ("waiting", "delayed", "active")),
        consent_refused=len(refused) + refused_enqueues, resynced=resynced,
        lost=tuple(sorted(lost.values(), key=lambda r: (r.t, r.resource, r.record_id))),
    )
