"""The admin API on the real Medplum simulator: rotation, expiry, limits, drift, journal, faults."""

from __future__ import annotations

import httpx
import pytest

from harness.clock import run_virtual
from tests.simulators.support import ADMIN, CLIENT_ID, CLIENT_SECRET, bearer, client_for, get_token, make_medplum


async def _token_answer(client: httpx.AsyncClient, secret: str) -> tuple[int, str]:
    response = await client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret})
    return response.status_code, response.json().get("error_description", "")


def test_secret_rotation_on_medplum() -> None:
    async def main() -> None:
        sim = make_medplum()
        async with client_for(sim) as client:
            added = await client.post(f"/admin/clients/{CLIENT_ID}/secrets", json={}, headers=ADMIN)
            assert added.status_code == 201
            new_secret = added.json()["secret"]
            assert await _token_answer(client, CLIENT_SECRET) == (200, "")
            assert await _token_answer(client, new_secret) == (200, "")
            credentials = (await client.get(f"/admin/clients/{CLIENT_ID}", headers=ADMIN)).json()["credentials"]
            old = credentials[0]["id"]
            assert (await client.delete(f"/admin/clients/{CLIENT_ID}/credentials/{old}", headers=ADMIN)).status_code \
                == 200
            assert await _token_answer(client, CLIENT_SECRET) == (400, "Invalid secret")
            assert await _token_answer(client, new_secret) == (200, "")

    run_virtual(main)


def test_forced_expiry_and_journal_on_medplum() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = await get_token(client)
            url = f"/fhir/R4/Patient/{pid}"
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            expired = await client.post("/admin/tokens/expire", json={"client_id": CLIENT_ID}, headers=ADMIN)
            assert expired.json() == {"expired": 1}
            assert (await client.get(url, headers=bearer(token))).status_code == 401
            entries = (await client.get("/admin/requests", params={"path": "/fhir/R4/Patient"},
                                        headers=ADMIN)).json()["entries"]
            assert [(e["client"], e["status"]) for e in entries] == [(CLIENT_ID, 200), (CLIENT_ID, 401)]
            assert token not in str(entries)

    run_virtual(main)


def test_fhir_quota_setting_at_run_time_on_medplum() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            names = (await client.get("/admin/rate-limits", headers=ADMIN)).json()
            assert {"requests", "auth", "fhir_user", "fhir_project"} <= set(names)
            token = await get_token(client)
            changed = await client.put("/admin/rate-limits/fhir_user", json={"limit": 2, "enabled": True},
                                       headers=ADMIN)
            assert changed.status_code == 200
            await client.post("/admin/rate-limits/fhir_user/reset", headers=ADMIN)
            statuses = [(await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token))).status_code
                        for _ in range(3)]
            assert statuses == [200, 200, 429]
            await client.post("/admin/reset", headers=ADMIN)  # clears the limiter counters
            assert (await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(token))).status_code == 200

    run_virtual(main)


def test_drift_and_faults_on_medplum() -> None:
    async def main() -> None:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            token = await get_token(client)
            url = f"/fhir/R4/Patient/{pid}"
            before = (await client.get(url, headers=bearer(token))).json()["meta"]["versionId"]
            touched = await client.post(f"/admin/drift/Patient/{pid}/touch", headers=ADMIN)
            assert touched.status_code == 200
            after = (await client.get(url, headers=bearer(token))).json()["meta"]["versionId"]
            assert after != before
            await client.put("/admin/chaos/fail-next", json={"count": 1, "status": 503, "scope": {
                "path": "/fhir/R4", "client_id": CLIENT_ID}}, headers=ADMIN)
            assert (await client.get("/healthcheck")).status_code == 200
            assert (await client.get(url, headers=bearer(token))).status_code == 503
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            await client.put("/admin/chaos/malformed-body", json={"mode": "truncated"}, headers=ADMIN)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(url, headers=bearer(token))

    run_virtual(main)
