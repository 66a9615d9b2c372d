"""The request journal: what it records (and never records), queries, clearing, capacity."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from simulators.admin.journal import RequestJournal
from simulators.fhir.store import format_instant
from tests.admin.support import ADMIN, CLIENT_A, SECRET_A, bearer, client_for, get_token, make_mini, patient, put_fault


async def _entries(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/admin/requests", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_entries_hold_method_path_client_status_latency_and_faults_but_no_secrets() -> None:
    clock = VirtualClock()

    async def main() -> tuple[list[dict[str, Any]], str]:
        mini = make_mini(clock=clock)
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            await put_fault(client, "latency", {"min_ms": 1500, "max_ms": 1500, "scope": {"path": "/fhir"}})
            await client.get(f"/fhir/Patient/{pid}?identifier=MRN|12345&name=Doe", headers=bearer(token))
            await client.get("/fhir/Patient/unknown", headers=bearer(token))
            await client.get("/ping")
            await client.get("/admin/chaos", headers=ADMIN)  # admin calls are not journaled
            entries = await _entries(client)
            return entries, token

    entries, token = run_virtual(main)
    assert [(e["method"], e["path"].split("/")[1], e["client"], e["status"]) for e in entries] == [
        ("POST", "token", CLIENT_A, 200), ("GET", "fhir", CLIENT_A, 200), ("GET", "fhir", CLIENT_A, 404),
        ("GET", "ping", None, 200)]
    assert [e["latency_ms"] for e in entries] == [0.0, 1500.0, 1500.0, 0.0]
    assert entries[1]["faults"] == ["latency"]
    assert entries[0]["faults"] == []
    assert entries[1]["at"] == format_instant(VIRTUAL_EPOCH)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    text = str(entries)
    for secret in (token, SECRET_A, "identifier", "12345", "Doe", "?"):
        assert secret not in text


def test_dropped_and_failed_calls_are_journaled_with_the_client_from_the_token() -> None:
    async def main() -> list[dict[str, Any]]:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)
            await put_fault(client, "outage", {"mode": "drop"})
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/fhir/Patient/x", headers=bearer(token))
            await put_fault(client, "outage", {"status": 503})
            await client.get("/fhir/Patient/x", headers=bearer(token))
            return await _entries(client, after=1)

    entries = run_virtual(main)
    assert [(e["status"], e["outcome"], e["client"], e["faults"]) for e in entries] == [
        (None, "dropped", CLIENT_A, ["outage"]), (503, "response", CLIENT_A, ["outage"])]


def test_queries_filter_and_page() -> None:
    clock = VirtualClock()

    async def main() -> None:
        mini = make_mini(clock=clock)
        async with client_for(mini.sim.app) as client:
            token = await get_token(client)  # seq 1
            for _ in range(3):  # seq 2..4: 401 without a token
                await client.get("/fhir/Patient/x")
            await clock.sleep(60)
            await client.get("/fhir/Observation/y", headers=bearer(token))  # seq 5: 404
            await client.post("/ping")  # seq 6
            await put_fault(client, "error-rate", {"probability": 1.0, "statuses": [503]})
            await client.get("/big")  # seq 7: 503

            def seqs(entries: list[dict[str, Any]]) -> list[int]:
                return [e["seq"] for e in entries]

            assert seqs(await _entries(client, path="/fhir/Patient")) == [2, 3, 4]
            assert seqs(await _entries(client, path="/fhir")) == [2, 3, 4, 5]
            assert seqs(await _entries(client, path="/fhir/Pat")) == []
            assert seqs(await _entries(client, status="401")) == [2, 3, 4]
            assert seqs(await _entries(client, status="4xx")) == [2, 3, 4, 5]
            assert seqs(await _entries(client, status="5xx")) == [7]
            assert seqs(await _entries(client, method="post")) == [1, 6]
            assert seqs(await _entries(client, client=CLIENT_A)) == [1, 5]
            assert seqs(await _entries(client, faulted="true")) == [7]
            since = format_instant(VIRTUAL_EPOCH.replace(minute=1))
            assert seqs(await _entries(client, since=since)) == [5, 6, 7]
            assert seqs(await _entries(client, limit=2)) == [1, 2]
            assert seqs(await _entries(client, after=2, limit=2)) == [3, 4]
            page = (await client.get("/admin/requests", params={"after": 5}, headers=ADMIN)).json()
            assert (page["count"], page["total"], page["last_seq"]) == (2, 7, 7)

    run_virtual(main)


def test_clear_forgets_entries_but_sequence_numbers_keep_counting() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await client.get("/ping")
            await client.get("/ping")
            cleared = await client.delete("/admin/requests", headers=ADMIN)
            assert cleared.json() == {"cleared": 2}
            assert await _entries(client) == []
            await client.get("/ping")
            assert [e["seq"] for e in await _entries(client)] == [3]

    run_virtual(main)


def test_capacity_keeps_the_newest_and_counts_the_dropped() -> None:
    journal = RequestJournal(capacity=3)
    moment = VIRTUAL_EPOCH
    for i in range(5):
        journal.record(at=moment, method="GET", path=f"/p/{i}", client=None, status=200, latency_s=0.0)
    assert [e.path for e in journal] == ["/p/2", "/p/3", "/p/4"]
    assert journal.dropped == 2
    with pytest.raises(ValueError, match="capacity"):
        RequestJournal(capacity=0)


@pytest.mark.parametrize("params", [{"status": "600"}, {"status": "5x"}, {"status": "abc"}, {"limit": "0"},
                                    {"limit": "100000"}, {"after": "-1"}, {"since": "yesterday"},
                                    {"since": "2026-01-05T08:00:00"}, {"path": "fhir"}, {"method": "GET /"}])
def test_bad_queries_are_400(params: dict[str, str]) -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            return await client.get("/admin/requests", params=params, headers=ADMIN)

    response = run_virtual(main)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
