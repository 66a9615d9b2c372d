"""Consent (runbook 002 §3.2): revocation blocks queued jobs (failed, not retried, nothing reaches
Medplum) and exports; every check is counted; and export's RBAC (§6.2) refuses without writing."""

from __future__ import annotations

import pytest

from harness.clock import run_virtual
from integrations.events import ConsentChecked, SyncCompleted, SyncFailed
from integrations.sync import (
    AuditEventType,
    ConsentDenied,
    DataClass,
    ExportForbidden,
    RecordKind,
    Requester,
    Role,
    UnknownPatientToken,
)
from tests.integrations.sync.support import ORG, OTHER_ORG, SyncLab, assert_no_phi, encounter, observation, sync_lab


def test_consent_revoked_while_jobs_are_queued_keeps_every_one_from_medplum() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_keep1")
            lab.patient("pt_revoke1")
            revoked = [await lab.store.create_encounter(ORG, "pt_revoke1", encounter()) for _ in range(3)]
            revoked += [await lab.store.create_observation(ORG, "pt_revoke1", observation()) for _ in range(3)]
            kept = await lab.store.create_observation(ORG, "pt_keep1", observation())
            assert (await lab.queue.stats()).waiting == 7  # enqueued while consent was active
            before = lab.gate.counts()
            lab.consents.revoke("pt_revoke1", ORG)
            await lab.drain()

            failed = await lab.queue.failed_jobs(50)
            assert len(failed) == 6
            assert {j.data["record_id"] for j in failed if isinstance(j.data, dict)} == {r.id for r in revoked}
            assert all(j.attempts_made == 1 for j in failed)  # not retried
            assert all("ConsentDenied" in (j.failed_reason or "") for j in failed)
            assert all("consent revoked" in (j.failed_reason or "") for j in failed)
            # nothing of the revoked patient reached Medplum: not its Patient, not one record
            paths = [p for _, p, _ in lab.fhir_requests()]
            assert not any("pt-revoke1" in p for p in paths)
            assert not any(r.id.replace("_", "-") in p for r in revoked for p in paths)
            assert [p["id"] for p in lab.medplum("Patient")] == ["pt-keep1"]
            assert [o["id"] for o in lab.medplum("Observation")] == [kept.id.replace("_", "-")]
            assert lab.medplum("Encounter") == []
            for record in revoked:
                stored = lab.store.get(record.kind, record.id)
                assert stored is not None
                assert stored.last_synced_at is None
            # the denied counter moved by one per job, and each refusal is audited and an event
            after = lab.gate.counts()
            assert after.denied - before.denied == 6
            assert after.by_org[ORG].denied == 6
            assert after.granted - before.granted == 1
            assert [e.status for e in lab.of(ConsentChecked)].count("denied") == 6
            denied = lab.audit.search(event_types=[AuditEventType.FHIR_SYNC_FAILED])
            assert len(denied) == 6
            assert {a.outcome for a in denied} == {"denied"}
            assert {f.error for f in lab.of(SyncFailed)} == {"ConsentDenied"}
            assert [c.record_id for c in lab.of(SyncCompleted)] == [kept.id]
            assert_no_phi(lab)

    run_virtual(main)


def test_writes_after_revocation_are_not_enqueued() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.patient("pt_revoke2")
            lab.consents.revoke("pt_revoke2", ORG)
            await lab.store.create_encounter(ORG, "pt_revoke2", encounter())
            assert (await lab.queue.stats()).waiting == 0
            assert lab.gate.counts().denied == 1

    run_virtual(main)


def test_the_gate_answers_granted_denied_and_missing_and_counts_each() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            lab.store.add_patient_token("pt_partial", ORG, "s3://x/pt_partial.enc")
            lab.consents.grant("pt_partial", ORG, [DataClass.LAB_RESULTS])
            assert lab.gate.check("pt_partial", ORG, DataClass.LAB_RESULTS).status == "granted"
            denied = lab.gate.check("pt_partial", ORG, DataClass.CLINICAL_NOTES)
            assert (denied.allowed, denied.status) == (False, "denied")
            assert "CLINICAL_NOTES" in denied.reason
            assert lab.gate.check("pt_partial", OTHER_ORG, DataClass.LAB_RESULTS).status == "missing"
            counts = lab.gate.counts()
            assert (counts.granted, counts.denied, counts.missing) == (1, 1, 1)
            assert counts.by_org[OTHER_ORG].missing == 1
            with pytest.raises(ValueError, match="data class"):
                lab.consents.grant("pt_partial", ORG, [])

    run_virtual(main)


async def _exportable(lab: SyncLab, token: str = "pt_export1") -> None:
    lab.patient(token)
    await lab.store.create_encounter(ORG, token, encounter())
    await lab.store.create_observation(ORG, token, observation())
    await lab.drain()


def _writes(lab: SyncLab) -> tuple[int, int]:
    return lab.audit.count(), len(lab.fhir_requests())


def test_export_is_refused_after_revocation() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            await _exportable(lab)
            admin = Requester("user_admin", ORG, Role.ADMIN)
            bundle = await lab.exporter.export_everything("pt_export1", admin)
            assert bundle["total"] == 3
            lab.consents.revoke("pt_export1", ORG)
            denied_before = lab.gate.counts().denied
            writes = _writes(lab)
            with pytest.raises(ConsentDenied) as caught:
                await lab.exporter.export_everything("pt_export1", admin)
            assert caught.value.status == "denied"
            assert lab.gate.counts().denied == denied_before + 1
            assert _writes(lab) == writes  # no audit row, no request to Medplum
            assert len(lab.exporter.recent_exports()) == 1
            assert_no_phi(lab)

    run_virtual(main)


def test_export_needs_all_three_data_classes() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            await _exportable(lab)
            lab.consents.grant("pt_export1", ORG, [DataClass.CLINICAL_NOTES, DataClass.LAB_RESULTS])
            with pytest.raises(ConsentDenied, match="MEDICATIONS"):
                await lab.exporter.export_everything("pt_export1", Requester("u", ORG, Role.ADMIN))

    run_virtual(main)


@pytest.mark.parametrize(("requester", "reason"), [
    (Requester("user_research", ORG, Role.RESEARCHER), "RESEARCHER"),
    (Requester("user_patient", ORG, Role.PATIENT, patient_token="pt_other1"), "own records"),
    (Requester("user_clinician", ORG, Role.CLINICIAN), "no encounter"),
    (Requester("user_admin_b", OTHER_ORG, Role.ADMIN), "organisation"),
])
def test_export_rbac_refuses_and_writes_nothing(requester: Requester, reason: str) -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            await _exportable(lab)
            lab.patient("pt_noenc1")  # a patient of the org without any encounter (for the clinician case)
            lab.patient("pt_other1")
            target = "pt_noenc1" if requester.role is Role.CLINICIAN else "pt_export1"
            writes = _writes(lab)
            checks = lab.gate.counts()
            with pytest.raises(ExportForbidden, match=reason):
                await lab.exporter.export_everything(target, requester)
            assert _writes(lab) == writes
            assert lab.gate.counts() == checks  # refused before consent was even looked at
            assert lab.exporter.recent_exports() == []

    run_virtual(main)


def test_export_rbac_allows_the_roles_of_the_runbook_and_filters() -> None:
    async def main() -> None:
        async with sync_lab() as lab:
            await _exportable(lab)
            own = Requester("user_patient", ORG, Role.PATIENT, patient_token="pt_export1")
            clinician = Requester("user_clinician", ORG, Role.CLINICIAN)
            assert (await lab.exporter.export_everything("pt_export1", own))["total"] == 3
            only = await lab.exporter.export_everything("pt_export1", clinician, types=["Observation"])
            entries = only["entry"]
            assert isinstance(entries, list)
            assert [e["resource"]["resourceType"] for e in entries] == ["Patient", "Observation"]  # type: ignore[index]
            future = lab.clock.now() + lab.later(days=1)
            dated = await lab.exporter.export_everything("pt_export1", clinician, start=future)
            assert dated["total"] == 1  # only the Patient: nothing is that recent
            exports = lab.exporter.recent_exports()
            assert [e.resource_count for e in exports] == [1, 2, 3]
            assert exports[0].to_json()["patientTokenId"] == "pt_export1"
            assert {e.user_id for e in exports} == {"user_patient", "user_clinician"}
            with pytest.raises(UnknownPatientToken):
                await lab.exporter.export_everything("pt_nobody", Requester("u", ORG, Role.ADMIN))
            assert lab.store.get(RecordKind.ENCOUNTER, "enc_0000000001") is not None
            assert_no_phi(lab)

    run_virtual(main)
