"""The sync pipeline's events in the lab's journal (`harness.journal.sync`): each maps to a typed journal
event that reads back from its JSON line, and a whole pipeline run journals no PHI."""

from __future__ import annotations

import pytest

from harness.clock import run_virtual
from harness.journal import Journal, integration_entry, parse_line
from harness.runner import journal_listener
from integrations.events import (
    AuditMirrorCompleted,
    ConsentChecked,
    IntegrationEvent,
    ReconciliationCompleted,
    SyncCompleted,
    SyncEnqueueFailed,
    SyncFailed,
)
from tests.integrations.sync.support import ORG, PHI, encounter, leaks, observation, sync_lab

EVENTS: list[tuple[IntegrationEvent, str]] = [
    (ConsentChecked(org_id=ORG, status="denied", data_class="LAB_RESULTS", purpose="CARE"), "consent.checked"),
    (SyncCompleted(kind="encounter", record_id="enc_1", correlation_id="sync-x#1", created=True),
     "fhir_sync.completed"),
    (SyncFailed(kind="observation", record_id="obs_1", correlation_id="sync-y#2", error="ServerError"),
     "fhir_sync.failed"),
    (SyncEnqueueFailed(kind="encounter", record_id="enc_2", error="StoreUnavailable"), "fhir_sync.enqueue_failed"),
    (ReconciliationCompleted(encounters_not_synced=1, encounters_stale=2, observations_not_synced=3,
                             observations_stale=4, enqueued=10, errors=0, duration_s=0.25),
     "reconciliation.completed"),
    (AuditMirrorCompleted(fetched=5, mirrored=4, skipped=1, errors=0), "audit_mirror.completed"),
]


@pytest.mark.parametrize(("event", "kind"), EVENTS, ids=[k for _, k in EVENTS])
def test_each_sync_event_is_journaled_and_reads_back(event: IntegrationEvent, kind: str) -> None:
    entry = integration_entry(event, 1.5)
    assert entry is not None
    assert entry.model_dump()["kind"] == kind
    assert parse_line(entry.model_dump_json()) == entry


def test_a_pipeline_run_journals_its_events_and_no_phi() -> None:
    async def main() -> list[str]:
        async with sync_lab() as lab:
            journal = Journal(lab.clock)
            lab.taps.append(journal_listener(journal))
            lab.patient("pt_journal1")
            await lab.store.create_encounter(ORG, "pt_journal1", encounter())
            await lab.store.create_observation(ORG, "pt_journal1", observation())
            lab.consents.revoke("pt_journal1", ORG)
            await lab.drain()
            await lab.reconciler.run()
            lines = list(journal.lines())
            kinds = {parse_line(line).model_dump()["kind"] for line in lines}
            assert {"consent.checked", "fhir_sync.failed", "reconciliation.completed", "job.failed"} <= kinds
            return lines

    lines = run_virtual(main)
    assert leaks(lines, PHI) == []
    assert not any("pt_journal1" in line and "fhir_sync" in line for line in lines)  # record ids, not tokens
