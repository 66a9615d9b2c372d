"""Conditional create (If-None-Exist), conditional update (PUT Type?search) and conditional delete."""

from __future__ import annotations

import httpx

from simulators.fhir import FhirPersonality
from tests.fhir_core.support import Core, outcome_of, patient, run

MRN = {"system": "urn:mrn", "value": "MRN-1"}


def test_if_none_exist_creates_once_then_returns_the_match() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        headers = {"If-None-Exist": "identifier=urn:mrn|MRN-1"}
        first = await client.post("/Patient", json=patient(identifier=[MRN]), headers=headers)
        assert first.status_code == 201
        again = await client.post("/Patient", json=patient(identifier=[MRN], gender="male"), headers=headers)
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["gender"] == "female"  # the existing one, unchanged
        assert core.store.count("Patient") == 1
        await client.post("/Patient", json=patient(identifier=[MRN]))  # unconditional: a duplicate
        outcome_of(await client.post("/Patient", json=patient(), headers=headers), 412)  # two matches
        outcome_of(await client.post("/Patient", json=patient(), headers={"If-None-Exist": "colour=red"}), 400)
        outcome_of(await client.post("/Patient", json=patient(), headers={"If-None-Exist": ""}), 412)

    run(scenario)


def test_conditional_update_creates_updates_and_refuses_ambiguity() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        created = await client.put("/Patient", params={"identifier": "urn:mrn|MRN-1"},
                                   json=patient(identifier=[MRN]))
        assert created.status_code == 201
        pid = created.json()["id"]
        updated = await client.put("/Patient", params={"identifier": "urn:mrn|MRN-1"},
                                   json=patient(identifier=[MRN], gender="male"))
        assert updated.status_code == 200
        assert updated.json()["id"] == pid
        assert updated.json()["meta"]["versionId"] == "2"
        mismatch = await client.put("/Patient", params={"identifier": "urn:mrn|MRN-1"},
                                    json=patient(identifier=[MRN], id="someone-else"))
        outcome_of(mismatch, 400)
        stale = await client.put("/Patient", params={"identifier": "urn:mrn|MRN-1"}, json=patient(identifier=[MRN]),
                                 headers={"If-Match": 'W/"1"'})
        outcome_of(stale, 412)
        await client.post("/Patient", json=patient(identifier=[MRN]))
        outcome_of(await client.put("/Patient", params={"identifier": "MRN-1"}, json=patient()), 412)
        assert core.store.read("Patient", pid)["gender"] == "male"

    run(scenario)


def test_conditional_delete_deletes_the_single_match() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient(identifier=[MRN]))).json()["id"]
        await client.post("/Patient", json=patient(gender="male"))
        assert (await client.delete("/Patient", params={"identifier": "MRN-1"})).status_code == 200
        outcome_of(await client.get(f"/Patient/{pid}"), 410)
        await client.post("/Patient", json=patient(gender="male"))
        outcome_of(await client.delete("/Patient", params={"gender": "male"}), 412)
        assert core.store.count("Patient") == 2

    run(scenario)


def test_conditional_update_off_and_read_only_personalities() -> None:
    async def no_conditional(core: Core, client: httpx.AsyncClient) -> None:
        outcome_of(await client.put("/Patient", params={"identifier": "x"}, json=patient()), 405)

    run(no_conditional, FhirPersonality(name="x", supports_conditional_update=False))

    async def read_only(core: Core, client: httpx.AsyncClient) -> None:
        outcome_of(await client.post("/Patient", json=patient()), 405)
        outcome_of(await client.put("/Patient/a", json=patient(id="a")), 405)
        outcome_of(await client.delete("/Patient/a"), 405)
        outcome_of(await client.patch("/Patient/a", json=[], headers={"Content-Type": "application/json-patch+json"}),
                   405)
        assert core.store.count("Patient") == 0
        assert (await client.get("/Patient")).status_code == 200

    run(read_only, FhirPersonality(name="ro", read_only=True))
