"""Ingress (runbook 002 §1.3 "Inbound Ingress", §6.1): bad input is a typed error with nothing written;
batches answer per entry in the runbook's shape; ingested records have sync disabled and enqueue nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.clock import run_virtual
from integrations.sync import (
    AuditEventType,
    InvalidResource,
    RecordKind,
    SyncError,
    UnknownPatientToken,
    WrongOrganisation,
)
from tests.integrations.sync.support import ORG, OTHER_ORG, SyncLab, assert_no_phi, sync_lab

OBSERVATION: dict[str, Any] = {  # runbook 002 §6.1's example, with the note a real feed would carry
    "resourceType": "Observation", "id": "obs_external_123", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
    "subject": {"reference": "Patient/pt_abc123"}, "effectiveDateTime": "2024-01-15T10:00:00Z",
    "valueQuantity": {"value": 37.2, "unit": "Cel"}, "note": [{"text": "Jane Doe phoned from +1-555-0142"}],
}
ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter", "id": "enc-external-9", "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "Z00.00"}]}],
    "subject": {"reference": "Patient/pt-abc123"}, "period": {"start": "2024-01-15T09:00:00Z"},
}


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resource = copy.deepcopy(base)
    resource.update(fields)
    return resource


def _nothing_written(lab: SyncLab) -> tuple[int, int, int]:
    """(encounter rows, observation rows, audit rows)."""
    db = lab.db.connection
    return (db.execute("SELECT COUNT(*) FROM encounters").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM observations").fetchone()[0], lab.audit.count())


def test_ingested_records_are_stored_with_sync_disabled_and_enqueue_nothing() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            obs = lab.ingress.ingest(OBSERVATION, ORG, "user_feed")
            enc = lab.ingress.ingest(ENCOUNTER, ORG, "user_feed", expected="Encounter")
            assert obs.to_json() == {"success": True, "resourceType": "Observation", "id": "obs_0000000001"}
            assert enc.id == "enc_0000000001"
            stored = lab.store.get(RecordKind.OBSERVATION, obs.id)
            assert stored is not None
            assert stored.fhir_sync_enabled is False
            assert stored.source == "ingress"
            assert (stored.details.code, stored.details.value, stored.details.unit) == ("8310-5", 37.2, "Cel")
            assert stored.details.notes == "Jane Doe phoned from +1-555-0142"  # kept locally only
            encounter = lab.store.get(RecordKind.ENCOUNTER, enc.id)
            assert encounter is not None
            assert (encounter.details.class_code, encounter.details.reason_code) == ("AMB", "Z00.00")
            assert (await lab.queue.stats()).waiting == 0
            await lab.drain()
            assert lab.fhir_requests() == []
            audits = lab.audit.search(event_types=[AuditEventType.FHIR_INGRESS])
            assert [(a.resource_type, a.resource_id, a.user_id) for a in audits] == [
                ("Encounter", enc.id, "user_feed"), ("Observation", obs.id, "user_feed")]
            assert_no_phi(lab)

    run_virtual(main)


BAD: list[tuple[str, Any, type[SyncError], str]] = [
    ("not an object", ["Observation"], InvalidResource, "JSON object"),
    ("wrong resourceType", changed(OBSERVATION, resourceType="Patient"), InvalidResource, "resourceType"),
    ("no resourceType", {k: v for k, v in OBSERVATION.items() if k != "resourceType"}, InvalidResource,
     "resourceType"),
    ("unknown element", changed(OBSERVATION, favouriteColour="blue"), InvalidResource, "favouriteColour"),
    ("bad value type", changed(OBSERVATION, valueQuantity={"value": "hot"}), InvalidResource, "valueQuantity"),
    ("no code", changed(OBSERVATION, code={"text": "temperature"}), InvalidResource, "code"),
    ("free text as a code", changed(OBSERVATION, code={"coding": [{"code": "Jane Doe"}]}), InvalidResource, "code"),
    ("no subject", {k: v for k, v in OBSERVATION.items() if k != "subject"}, InvalidResource, "subject"),
    ("subject not a patient", changed(OBSERVATION, subject={"reference": "Group/g1"}), InvalidResource, "subject"),
    ("subject a name", changed(OBSERVATION, subject={"reference": "Patient/Jane Doe"}), InvalidResource,
     "subject"),
    ("unknown patient token", changed(OBSERVATION, subject={"reference": "Patient/pt_nobody"}),
     UnknownPatientToken, "pt_nobody"),
    ("patient of another org", changed(OBSERVATION, subject={"reference": "Patient/pt_other9"}),
     WrongOrganisation, "org_alpha"),
    ("bad encounter class", changed(ENCOUNTER, **{"class": {"code": "walk in"}}), InvalidResource, "class"),
    ("bad encounter status", changed(ENCOUNTER, status="happy"), InvalidResource, "status"),
]


@pytest.mark.parametrize(("resource", "error", "detail"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_typed_error_and_writes_nothing(resource: Any, error: type[SyncError], detail: str) -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            lab.patient("pt_other9", OTHER_ORG)
            before = _nothing_written(lab)
            with pytest.raises(error) as caught:
                lab.ingress.ingest(resource, ORG, "user_feed")
            assert detail in caught.value.detail
            assert "Jane" not in caught.value.detail
            assert "hot" not in caught.value.detail  # names the field, not its value
            assert _nothing_written(lab) == before
            assert (await lab.queue.stats()).waiting == 0
            lab.ingress.ingest(OBSERVATION, ORG, "user_feed")  # the same lab does write a good resource
            assert _nothing_written(lab) != before

    run_virtual(main)


def test_the_single_endpoints_expect_their_type() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            with pytest.raises(InvalidResource, match="Observation"):
                lab.ingress.ingest(ENCOUNTER, ORG, "user_feed", expected="Observation")
            assert lab.audit.count() == 0

    run_virtual(main)


def test_a_batch_answers_per_entry_in_the_runbook_shape() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_abc123")
            bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
                {"resource": ENCOUNTER}, {"resource": OBSERVATION},
                {"resource": changed(OBSERVATION, subject={"reference": "Patient/pt_nobody"})},
                {"resource": changed(OBSERVATION, resourceType="Medication")}, {"fullUrl": "urn:x"}]}
            result = lab.ingress.ingest_batch(bundle, ORG, "user_feed")
            body = result.to_json()
            assert (body["success"], body["total"], body["succeeded"], body["failed"]) == (False, 5, 2, 3)
            results = body["results"]
            assert isinstance(results, list)
            assert results[:2] == [{"resourceType": "Encounter", "id": "enc_0000000001", "success": True},
                                   {"resourceType": "Observation", "id": "obs_0000000001", "success": True}]
            assert [(r["resourceType"], r["success"], r["error"]) for r in results[2:]] == [
                ("Observation", False, "UnknownPatientToken"), ("Medication", False, "InvalidResource"),
                (None, False, "InvalidResource")]
            assert lab.audit.count() == 2
            ok = lab.ingress.ingest_batch({"resourceType": "Bundle", "type": "batch",
                                           "entry": [{"resource": OBSERVATION}]}, ORG, "user_feed")
            assert ok.to_json()["success"] is True
            with pytest.raises(InvalidResource, match="Bundle"):
                lab.ingress.ingest_batch(OBSERVATION, ORG, "user_feed")
            assert (await lab.queue.stats()).waiting == 0
            assert_no_phi(lab, ("Jane Doe", "+1-555-0142"))

    run_virtual(main)
