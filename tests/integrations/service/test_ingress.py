"""Ingress (runbook 002 §6.1): resources from an external EHR are stored with sync disabled (no job, no
loop back to Medplum) and audited; every bad request is a 4xx with a JSON body and writes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.clock import run_virtual
from integrations.sync import AuditEventType, RecordKind
from tests.integrations.service.support import API_KEY, OP, OPERATOR, OTHER_ORG, caller, error_body, service

TOKEN = "pt_abc123"


def observation(subject: str = f"Patient/{TOKEN}") -> dict[str, object]:
    return {"resourceType": "Observation", "id": "obs_external_123", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2024-01-15T10:00:00Z",
            "valueQuantity": {"value": 37.2, "unit": "Cel"}}


def encounter(subject: str = f"Patient/{TOKEN}") -> dict[str, object]:
    return {"resourceType": "Encounter", "id": "enc_external_9", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": subject}, "period": {"start": "2024-01-15T09:00:00Z"}}


def test_observation_and_encounter_are_stored_unsynced_and_audited(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            svc.patient(TOKEN)
            response = await svc.http.post("/fhir/inbound/observation", json=observation(),
                                           headers={**caller(user="user_123"), "Content-Type": "application/fhir+json"})
            assert response.status_code == 201
            body = response.json()
            assert body["success"] is True
            assert body["resourceType"] == "Observation"
            record = svc.wired.store.get(RecordKind.OBSERVATION, body["id"])
            assert record is not None
            assert record.fhir_sync_enabled is False
            assert record.patient_token == TOKEN
            response = await svc.http.post("/fhir/inbound/encounter", json=encounter(), headers=caller())
            assert response.status_code == 201
            assert response.json()["resourceType"] == "Encounter"
            assert await svc.jobs() == 0  # no sync job: ingested records never go back to Medplum
            audits = svc.wired.components.audit
            assert audits is not None
            ingress = audits.search(event_types=[AuditEventType.FHIR_INGRESS])
            assert len(ingress) == 2
            assert {a.user_id for a in ingress} == {"user_123", "demo-ehr"}  # X-User-ID, else the key's name

    run_virtual(main)


def test_batch_ingests_entry_by_entry(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            svc.patient(TOKEN)
            bundle = {"resourceType": "Bundle", "type": "batch",
                      "entry": [{"resource": encounter()}, {"resource": observation()}]}
            response = await svc.http.post("/fhir/inbound/batch", json=bundle, headers=caller())
            assert response.status_code == 200
            body = response.json()
            assert (body["success"], body["total"], body["succeeded"], body["failed"]) == (True, 2, 2, 0)
            assert [r["resourceType"] for r in body["results"]] == ["Encounter", "Observation"]
            assert all(r["success"] for r in body["results"])
            bad = copy.deepcopy(bundle)
            bad["entry"].append({"resource": observation("Patient/pt_nobody")})  # type: ignore[attr-defined]
            body = (await svc.http.post("/fhir/inbound/batch", json=bad, headers=caller())).json()
            assert (body["success"], body["total"], body["succeeded"], body["failed"]) == (False, 3, 2, 1)
            assert body["results"][2]["error"] == "UnknownPatientToken"
            written = svc.written()
            assert (written.encounters, written.observations) == (2, 2)  # the bad entry wrote nothing

    run_virtual(main)


BAD_INGRESS = [
    ("/fhir/inbound/observation", b"{not json", 400, "malformed_json"),
    ("/fhir/inbound/observation", b"", 400, "missing_body"),
    ("/fhir/inbound/observation", b"[1, 2]", 400, "malformed_json"),
    ("/fhir/inbound/observation", {"resourceType": "Patient", "id": "x"}, 422, "invalid_resource"),
    ("/fhir/inbound/observation", encounter(), 422, "invalid_resource"),
    ("/fhir/inbound/encounter", observation(), 422, "invalid_resource"),
    ("/fhir/inbound/observation", {**observation(), "status": "bogus"}, 422, "invalid_resource"),
    ("/fhir/inbound/observation", {k: v for k, v in observation().items() if k != "code"}, 422, "invalid_resource"),
    ("/fhir/inbound/observation", {k: v for k, v in observation().items() if k != "subject"}, 422,
     "invalid_resource"),
    ("/fhir/inbound/observation", observation("Patient/Jane Doe"), 422, "invalid_resource"),
    ("/fhir/inbound/encounter", {**encounter(), "class": "AMB"}, 422, "invalid_resource"),
    ("/fhir/inbound/observation", observation("Patient/pt_nobody"), 404, "unknown_patient_token"),
    ("/fhir/inbound/encounter", encounter("Patient/pt_theirs"), 403, "wrong_organisation"),
    ("/fhir/inbound/batch", observation(), 422, "invalid_resource"),
    ("/fhir/inbound/batch", {"resourceType": "Bundle", "type": "searchset", "entry": []}, 422, "invalid_resource"),
    ("/fhir/inbound/batch", {"resourceType": "Bundle", "type": "batch", "entry": "x"}, 422, "invalid_resource"),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), BAD_INGRESS)
def test_bad_ingress_is_4xx_and_writes_nothing(tmp_path: Path, path: str, body: object, status: int,
                                               code: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            svc.patient(TOKEN)
            svc.patient("pt_theirs", OTHER_ORG)
            before = svc.written()
            content = body if isinstance(body, bytes) else None
            response = await svc.http.post(path, headers=caller(), content=content,
                                           json=None if content is not None else body)
            payload = error_body(response, status, code)
            assert "Jane" not in str(payload)  # a value is never echoed
            assert svc.written() == before
            assert await svc.jobs() == 0

    run_virtual(main)


BAD_CALLERS = [
    ({"X-Org-ID": "org_demo"}, 401, "unauthenticated"),
    ({"Authorization": f"Basic {API_KEY}", "X-Org-ID": "org_demo"}, 401, "unauthenticated"),
    ({"Authorization": "Bearer not-a-key", "X-Org-ID": "org_demo"}, 403, "invalid_token"),
    ({"Authorization": f"Bearer {OPERATOR}", "X-Org-ID": "org_demo"}, 403, "invalid_token"),
    ({"Authorization": f"Bearer {API_KEY}"}, 400, "missing_header"),
    ({"Authorization": f"Bearer {API_KEY}", "X-Org-ID": "org demo; drop"}, 400, "malformed_header"),
    ({"Authorization": f"Bearer {API_KEY}", "X-Org-ID": OTHER_ORG}, 403, "wrong_organisation"),
    ({**caller(), "X-User-ID": "x" * 200}, 400, "malformed_header"),
]


@pytest.mark.parametrize("path", ["/fhir/inbound/observation", "/fhir/inbound/encounter", "/fhir/inbound/batch"])
def test_ingress_refuses_unauthenticated_and_foreign_callers(tmp_path: Path, path: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            svc.patient(TOKEN)
            before = svc.written()
            body = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": observation()}]} \
                if path.endswith("batch") else observation() if path.endswith("observation") else encounter()
            for headers, status, code in BAD_CALLERS:
                error_body(await svc.http.post(path, json=body, headers=headers), status, code)
            assert svc.written() == before
            assert (await svc.http.post(path, json=body, headers=caller())).status_code in (200, 201)

    run_virtual(main)


def test_operator_token_does_not_open_ingress_and_the_api_key_not_admin(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            error_body(await svc.http.get("/fhir/admin/queue/stats", headers=caller()), 403, "invalid_token")
            assert (await svc.http.get("/fhir/admin/queue/stats", headers=OP)).status_code == 200

    run_virtual(main)
