"""Bulk Data $export: kick-off, polling on the injected clock, manifest, NDJSON files, cancel, limits."""

from __future__ import annotations

import json

import httpx
import pytest

from simulators.fhir import FhirPersonality
from tests.fhir_core.support import Core, observation, outcome_of, patient, run

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
SLOW = FhirPersonality(name="slow-export", export_duration_s=120, export_retry_after_s=30)
ONE_AT_A_TIME = FhirPersonality(name="cerner-like", max_exports_per_client=1, export_retry_after_s=600)


async def _seed(client: httpx.AsyncClient) -> tuple[str, str]:
    a = (await client.post("/Patient", json=patient())).json()["id"]
    b = (await client.post("/Patient", json=patient(gender="male"))).json()["id"]
    for subject in (a, a, b):
        await client.post("/Observation", json=observation(subject))
    await client.post("/Practitioner", json={"resourceType": "Practitioner", "name": [{"family": "Who"}]})
    return a, b


def test_system_export_polls_until_complete_then_serves_ndjson() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        await _seed(client)
        kickoff = await client.get("/$export", headers=ASYNC)
        assert kickoff.status_code == 202
        status_url = kickoff.headers["content-location"]
        assert status_url.startswith("http://fhir.test/fhir/$export-status/")
        progress = []
        while True:
            poll = await client.get(status_url)
            if poll.status_code == 200:
                break
            assert poll.status_code == 202
            assert poll.headers["retry-after"] == "30"
            progress.append(poll.headers["x-progress"])
            await core.clock.sleep(int(poll.headers["retry-after"]))
        assert progress == ["in-progress 0%", "in-progress 25%", "in-progress 50%", "in-progress 75%"]
        assert core.clock.monotonic() == pytest.approx(120)
        manifest = poll.json()
        assert manifest["requiresAccessToken"] is True
        assert manifest["transactionTime"] == "2026-01-05T08:00:00.000Z"
        counts = {item["type"]: item["count"] for item in manifest["output"]}
        assert counts == {"Observation": 3, "Patient": 2, "Practitioner": 1}
        for item in manifest["output"]:
            ndjson = await client.get(item["url"])
            assert ndjson.headers["content-type"].startswith("application/fhir+ndjson")
            lines = ndjson.text.splitlines()
            assert len(lines) == item["count"]
            assert {json.loads(line)["resourceType"] for line in lines} == {item["type"]}

    run(scenario, SLOW)


def test_patient_and_group_exports_and_type_filter() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        a, _ = await _seed(client)
        group = {"resourceType": "Group", "type": "person", "actual": True,
                 "member": [{"entity": {"reference": f"Patient/{a}"}}]}
        gid = (await client.post("/Group", json=group)).json()["id"]
        results = {}
        for name, path, params in (("patients", "/Patient/$export", {}), ("group", f"/Group/{gid}/$export", {}),
                                   ("typed", "/$export", {"_type": "Observation"})):
            status_url = (await client.get(path, params=params, headers=ASYNC)).headers["content-location"]
            await core.clock.sleep(10)
            manifest = (await client.get(status_url)).json()
            results[name] = {item["type"]: item["count"] for item in manifest["output"]}
        assert results == {"patients": {"Observation": 3, "Patient": 2},
                           "group": {"Observation": 2, "Patient": 1},
                           "typed": {"Observation": 3}}

    run(scenario)


def test_cancel_other_clients_and_bad_kickoffs() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        status_url = (await client.get("/$export", headers=ASYNC)).headers["content-location"]
        outcome_of(await client.get(status_url, headers={"X-Client": "someone-else"}), 404)
        cancelled = await client.delete(status_url)
        assert cancelled.status_code == 202
        outcome_of(await client.get(status_url), 404)
        outcome_of(await client.get("/$export"), 400)  # no Prefer: respond-async
        outcome_of(await client.get("/$export", params={"_type": "Spaceship"}, headers=ASYNC), 400)
        outcome_of(await client.get("/$export", params={"_outputFormat": "text/csv"}, headers=ASYNC), 400)
        outcome_of(await client.get("/$export", params={"_since": "last tuesday"}, headers=ASYNC), 400)
        outcome_of(await client.get("/$export-file/nope/0"), 404)

    run(scenario)


def test_one_export_at_a_time_per_client_is_429() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        first = await client.get("/$export", headers=ASYNC)
        assert first.status_code == 202
        outcome_of(await client.get("/$export", headers=ASYNC), 429)
        assert (await client.get("/$export", headers={**ASYNC, "X-Client": "other"})).status_code == 202
        poll = await client.get(first.headers["content-location"])
        assert poll.headers["retry-after"] == "600"
        await core.clock.sleep(10)
        assert (await client.get("/$export", headers=ASYNC)).status_code == 202

    run(scenario, ONE_AT_A_TIME)


def test_export_not_supported() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        outcome_of(await client.get("/$export", headers=ASYNC), 404)

    run(scenario, FhirPersonality(name="none", supports_export=False))
