"""Same seed, same vendor simulator: ids, tokens, OAuth error ids and whole responses are byte-identical."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.clock import VirtualClock
from tests.vendors.support import (
    ALLSCRIPTS_URL,
    CERNER_FHIR,
    CERNER_URL,
    EPIC_FHIR,
    EPIC_URL,
    allscripts_token,
    basic,
    bearer,
    cerner_token,
    client_for,
    epic_token,
    magic,
    make_allscripts,
    make_cerner,
    make_epic,
    patient,
    unity_token,
    virtual,
)

Session = Callable[[int], list[bytes]]


def _epic(seed: int) -> list[bytes]:
    async def main(clock: VirtualClock) -> list[bytes]:
        sim = make_epic(clock, seed=seed)
        ids = sim.seed_patients(3)
        async with client_for(sim.app, EPIC_URL) as client:
            token = await epic_token(client, clock)
            bodies = [",".join(ids).encode(), token.encode()]
            bodies += [(await client.get(f"{EPIC_FHIR}/Patient/{pid}", headers=bearer(token))).content for pid in ids]
            bodies.append((await client.post(f"{EPIC_FHIR}/Patient", json=patient(), headers=bearer(token))).content)
            bodies.append((await client.get(f"{EPIC_FHIR}/Patient?_count=2", headers=bearer(token))).content)
            return bodies

    return virtual(main)


def _cerner(seed: int) -> list[bytes]:
    async def main(clock: VirtualClock) -> list[bytes]:
        sim = make_cerner(clock, seed=seed)
        ids = sim.seed_patients(3)
        async with client_for(sim.app, CERNER_URL) as client:
            token = await cerner_token(client)
            refused = await client.post(f"/tenants/{sim.tenant}/protocols/oauth2/profiles/smart-v1/token",
                                        data={"grant_type": "client_credentials"}, headers=basic("x", "y"))
            read = await client.get(f"{CERNER_FHIR}/Patient/{ids[0]}", headers=bearer(token))
            return [token.encode(), refused.content, read.content, read.headers["x-request-id"].encode()]

    return virtual(main)


def _allscripts(seed: int) -> list[bytes]:
    async def main(clock: VirtualClock) -> list[bytes]:
        sim = make_allscripts(clock, seed=seed)
        ids = sim.seed_patients(3)
        async with client_for(sim.app, ALLSCRIPTS_URL) as client:
            unity = await unity_token(client)
            token = await allscripts_token(client)
            rows = await magic(client, unity, "GetPatient", PatientID=ids[1])
            read = await client.get(f"/FHIR/Patient/{ids[1]}", headers=bearer(token))
            return [unity.encode(), token.encode(), str(rows).encode(), read.content]

    return virtual(main)


@pytest.mark.parametrize("session", [_epic, _cerner, _allscripts])
def test_same_seed_same_bytes_and_another_seed_differs(session: Session) -> None:
    first = session(42)
    assert first == session(42)
    assert first != session(43)


