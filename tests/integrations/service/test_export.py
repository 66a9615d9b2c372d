"""Export (runbook 002 §6.2): `$everything` from the Medplum simulator after a real sync through the queue,
with the RBAC rules and the CARE consent; every refusal a 4xx with a JSON body and no export audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import run_virtual
from integrations.sync import AuditEventType, EncounterDetails, ObservationDetails
from tests.integrations.service.support import OP, OTHER_ORG, Svc, caller, error_body, service

TOKEN = "pt_exp001"
PATH = f"/fhir/export/patient/{TOKEN}/$everything"


async def synced_patient(svc: Svc, token: str = TOKEN) -> None:
    """A patient with one encounter and one observation, synced to the simulator by the worker."""
    svc.patient(token)
    store = svc.wired.store
    await store.create_encounter("org_demo", token, EncounterDetails(status="finished", class_code="AMB"))
    await store.create_observation("org_demo", token, ObservationDetails(code="8310-5", value=37.2, unit="Cel"))
    await svc.until_idle()
    assert (await svc.queue.stats()).completed == 2


def exports(svc: Svc) -> int:
    audit = svc.wired.components.audit
    assert audit is not None
    return audit.count(event_types=[AuditEventType.FHIR_EXPORT])


def test_admin_exports_the_synced_bundle_and_it_is_audited(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced_patient(svc)
            response = await svc.http.get(PATH, headers=caller(user="user_123", role="ADMIN"))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/fhir+json")
            bundle = response.json()
            assert bundle["resourceType"] == "Bundle"
            kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
            assert kinds == ["Encounter", "Observation", "Patient"]
            assert bundle["total"] == 3
            patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
            assert "birthDate" not in patient
            assert "telecom" not in patient
            listed = (await svc.http.get("/fhir/export/exports", headers=OP)).json()
            assert listed["success"] is True
            assert listed["count"] == 1
            [entry] = listed["exports"]
            assert (entry["userId"], entry["patientTokenId"], entry["resourceCount"]) == ("user_123", TOKEN, 3)

    run_virtual(main)


def test_clinician_type_and_date_filters(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced_patient(svc)
            headers = caller(user="doc_1", role="CLINICIAN")
            only_obs = (await svc.http.get(PATH, params={"type": "Observation"}, headers=headers)).json()
            assert sorted(e["resource"]["resourceType"] for e in only_obs["entry"]) == ["Observation", "Patient"]
            future = (await svc.http.get(PATH, params={"start": "2999-01-01"}, headers=headers)).json()
            assert [e["resource"]["resourceType"] for e in future["entry"]] == ["Patient"]
            own = await svc.http.get(PATH, headers={**caller(user="p_1", role="PATIENT"), "X-Patient-Token": TOKEN})
            assert own.status_code == 200

    run_virtual(main)


@pytest.mark.parametrize(("path", "headers", "params", "status", "code"), [
    (PATH, caller(user="r_1", role="RESEARCHER"), {}, 403, "export_forbidden"),
    (PATH, caller(user="p_1", role="PATIENT"), {}, 403, "export_forbidden"),
    (PATH, {**caller(user="p_1", role="PATIENT"), "X-Patient-Token": "pt_someoneelse"}, {}, 403, "export_forbidden"),
    (PATH.replace(TOKEN, "pt_nobody"), caller(user="a_1", role="ADMIN"), {}, 404, "unknown_patient_token"),
    (PATH.replace(TOKEN, "pt_theirs"), caller(user="a_1", role="ADMIN"), {}, 403, "export_forbidden"),
    (PATH.replace(TOKEN, "pt_noconsent"), caller(user="a_1", role="ADMIN"), {}, 403, "consent_denied"),
    (PATH.replace(TOKEN, "pt_noenc"), caller(user="d_1", role="CLINICIAN"), {}, 403, "export_forbidden"),
    (PATH.replace(TOKEN, "Jane_Doe"), caller(user="a_1", role="ADMIN"), {}, 422, "invalid_request"),
    (PATH, caller(user="a_1", role="SUPERUSER"), {}, 400, "malformed_header"),
    (PATH, caller(user="a_1"), {}, 400, "missing_header"),
    (PATH, caller(role="ADMIN"), {}, 400, "missing_header"),
    (PATH, caller(user="a_1", role="ADMIN"), {"start": "yesterday"}, 400, "invalid_query"),
    (PATH, caller(user="a_1", role="ADMIN"), {"start": "2024-02-01", "end": "2024-01-01"}, 400, "invalid_query"),
    (PATH, caller(user="a_1", role="ADMIN"), {"type": "Observation;DROP"}, 400, "invalid_query"),
    (PATH, caller(OTHER_ORG, user="a_1", role="ADMIN"), {}, 403, "wrong_organisation"),
    (PATH, {"X-Org-ID": "org_demo", "X-User-ID": "a_1", "X-Role": "ADMIN"}, {}, 401, "unauthenticated"),
    (PATH, {**caller(user="a_1", role="ADMIN"), "Authorization": "Bearer nope"}, {}, 403, "invalid_token"),
])
def test_refused_exports_are_4xx_and_not_audited(tmp_path: Path, path: str, headers: dict[str, str],
                                                 params: dict[str, str], status: int, code: str) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced_patient(svc)
            svc.patient("pt_theirs", OTHER_ORG)
            svc.patient("pt_noconsent", consent=False)
            svc.patient("pt_noenc")
            before = svc.written()
            error_body(await svc.http.get(path, params=params, headers=headers), status, code)
            assert exports(svc) == 0
            assert svc.written() == before

    run_virtual(main)


def test_revoked_consent_refuses_export_and_moves_the_denied_counter(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced_patient(svc)
            svc.wired.consents.revoke(TOKEN, "org_demo")
            error_body(await svc.http.get(PATH, headers=caller(user="a_1", role="ADMIN")), 403, "consent_denied")
            assert exports(svc) == 0
            metrics = (await svc.http.get("/metrics", headers=OP)).text
            assert 'holi_hipaa_consent_validations_total{org_id="org_demo",status="denied"} 1.0' in metrics

    run_virtual(main)


def test_exports_listing_needs_the_operator_token_and_a_sane_limit(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            error_body(await svc.http.get("/fhir/export/exports", headers=caller(user="a", role="ADMIN")), 403)
            error_body(await svc.http.get("/fhir/export/exports"), 401)
            error_body(await svc.http.get("/fhir/export/exports", params={"limit": 0}, headers=OP), 422)

    run_virtual(main)


def test_medplum_down_is_a_503_not_a_500(tmp_path: Path) -> None:
    async def main() -> None:
        async with service(tmp_path) as svc:
            await synced_patient(svc)
            svc.wired.vendor_client.breaker.force_open()
            body = error_body(await svc.http.get(PATH, headers=caller(user="a_1", role="ADMIN")), 503)
            assert body["error"] == "upstream_unavailable"
            assert exports(svc) == 0

    run_virtual(main)
