"""Same seed, same simulator: ids, tokens and whole responses are byte-identical."""

from __future__ import annotations

import httpx

from harness.clock import VirtualClock, run_virtual
from tests.simulators.support import ADMIN, bearer, client_for, get_token, make_medplum, patient


def _session(seed: int, with_chaos: bool = False) -> list[bytes]:
    """A short session; returns every response body in order."""
    clock = VirtualClock()

    async def main() -> list[bytes]:
        sim = make_medplum(seed=seed, clock=clock)
        ids = sim.seed_patients(5)
        bodies: list[bytes] = [",".join(ids).encode()]
        async with client_for(sim) as client:
            if with_chaos:
                await client.put("/admin/chaos/latency", json={"min_ms": 10, "max_ms": 900}, headers=ADMIN)
            token = await get_token(client)
            bodies.append(token.encode())
            auth = bearer(token)
            for pid in ids:
                bodies.append((await client.get(f"/fhir/R4/Patient/{pid}", headers=auth)).content)
            created = await client.post("/fhir/R4/Patient", json=patient(), headers=auth)
            bodies.append(created.json()["id"].encode())
            bodies.append(created.content)
            bodies.append((await client.get("/fhir/R4/Patient", params={"_id": ",".join(ids[:2])},
                                            headers=auth)).content)
            if with_chaos:
                bodies.append(str(clock.monotonic()).encode())
        return bodies

    return run_virtual(main)


def test_same_seed_gives_byte_identical_sessions() -> None:
    assert _session(42) == _session(42)
    assert _session(42, with_chaos=True) == _session(42, with_chaos=True)


def test_different_seeds_give_different_ids_and_tokens() -> None:
    first, second = _session(1), _session(2)
    assert first[0] != second[0]  # patient ids
    assert first[1] != second[1]  # access token


def test_chaos_decisions_do_not_shift_ids_or_tokens() -> None:
    calm, stormy = _session(42), _session(42, with_chaos=True)
    assert calm[:2] == stormy[:2]  # seeded patient ids, token
    assert calm[7] == stormy[7]  # id of a patient created after latency draws: chaos has its own stream
    assert calm[8] != stormy[8]  # ... though its lastUpdated moved with the injected latency


def test_responses_carry_no_wall_clock_time() -> None:
    async def main() -> httpx.Response:
        sim = make_medplum()
        [pid] = sim.seed_patients(1)
        async with client_for(sim) as client:
            return await client.get(f"/fhir/R4/Patient/{pid}", headers=bearer(await get_token(client)))

    response = run_virtual(main)
    assert "date" not in response.headers  # in process nothing adds a Date header
    assert response.json()["meta"]["lastUpdated"] == "2026-01-05T08:00:00.000Z"
