"""The audit mirror (runbook 002 §2.6, §6.3) against an in-process Medplum simulator on the virtual clock: the
simulator writes an AuditEvent per FHIR interaction (simulators/medplum/audit.py); tests add events of their
own (organisations, actions, malformed ones) straight into its store, in the same shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, VendorClient
from integrations.events import AuditMirrorCompleted, IntegrationEvent
from integrations.sync import AppDatabase, AuditEventType, AuditTrail
from integrations.sync.audit_mirror import AuditMirror, MirrorEventType, MirrorResult
from integrations.sync.deid import ORG_EXTENSION_URL
from integrations.sync.errors import SyncError
from simulators.fhir.store import format_instant
from simulators.medplum.app import MedplumSimulator
from simulators.transport import VirtualTransport
from tests.integrations.pipeline.lab import Recording
from tests.integrations.sync.support import event_texts, leaks

BASE_URL = "http://medplum.ehrlab.test"
AUDIT_PATH = "/fhir/R4/AuditEvent"


@dataclass
class MirrorLab:
    clock: VirtualClock
    simulator: MedplumSimulator
    client: VendorClient
    transport: Recording
    admin: httpx.AsyncClient
    db: AppDatabase
    mirror: AuditMirror
    audit: AuditTrail
    events: list[IntegrationEvent] = field(default_factory=list)

    async def observations(self, n: int, *, spacing_s: float = 0.0) -> list[str]:
        """`n` Observation creates (one AuditEvent `C` each), `spacing_s` of virtual time apart."""
        ids = []
        for i in range(n):
            if i and spacing_s:
                await self.clock.sleep(spacing_s)
            created = await self.client.connector.create(
                {"resourceType": "Observation", "status": "final",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]}})
            ids.append(created.id)
        return ids

    def inject(self, **fields: Any) -> str:
        """An AuditEvent in the simulator's shape, with `fields` replacing (None: removing) its elements."""
        event: dict[str, Any] = {
            "resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
            "action": "R", "recorded": format_instant(self.clock.now()), "outcome": "0", "outcomeDesc": "200",
            "agent": [{"who": {"reference": "ClientApplication/ehrlab-test"}, "requestor": True}],
            "source": {"observer": {"display": "medplum"}},
            "entity": [{"what": {"reference": "Patient/pt-abc"}}],
        }
        for key, value in fields.items():
            if value is None:
                event.pop(key, None)
            else:
                event[key] = value
        return self.simulator.store.record(event, last_updated=format_instant(self.clock.now()))

    def audit_ids(self) -> set[str]:
        return {str(e["id"]) for e in self.simulator.audit_events()}

    def mirrored_ids(self) -> list[str]:
        return [str(r[0]) for r in self.db.connection.execute("SELECT fhir_id FROM mirrored_audit_events")]

    def completed(self) -> list[AuditMirrorCompleted]:
        return [e for e in self.events if isinstance(e, AuditMirrorCompleted)]

    async def chaos(self, kind: str, body: dict[str, Any]) -> None:
        (await self.admin.put(f"/admin/chaos/{kind}", json=body)).raise_for_status()

    async def calm(self) -> None:
        (await self.admin.delete("/admin/chaos")).raise_for_status()


@asynccontextmanager
async def mirror_lab(*, page_size: int = 200, seed: int = 5) -> AsyncIterator[MirrorLab]:
    """Build inside `run_virtual`."""
    clock = VirtualClock()
    events: list[IntegrationEvent] = []
    adapter = VENDORS["medplum"]
    sources = RandomSource(seed)
    secrets = LabSecrets.generate("medplum", sources.stream("secrets.medplum"))
    simulator = cast(MedplumSimulator, adapter.simulator(clock, sources.stream("simulator.medplum"), secrets))
    transport = Recording(VirtualTransport(simulator.app))
    client = adapter.client(base_url=BASE_URL, transport=transport, clock=clock, sources=sources, secrets=secrets,
                            listener=events.append)
    admin = httpx.AsyncClient(transport=VirtualTransport(simulator.app), base_url=BASE_URL,
                              headers={"Authorization": f"Bearer {secrets.admin_token}"})
    db = AppDatabase(":memory:", clock)
    audit = AuditTrail(db, clock)
    mirror = AuditMirror(db, client.connector, clock, events.append, audit=audit, page_size=page_size)
    try:
        yield MirrorLab(clock, simulator, client, transport, admin, db, mirror, audit, events)
    finally:
        await admin.aclose()
        await client.aclose()
        db.close()


def counts(result: MirrorResult) -> tuple[int, int, int, int]:
    return result.fetched, result.mirrored, result.skipped, result.errors


def test_incremental_second_run_fetches_only_new_events() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            await lab.observations(3, spacing_s=1.0)
            first = await lab.mirror.run()
            assert counts(first) == (3, 3, 0, 0)
            assert sorted(lab.mirrored_ids()) == sorted(lab.audit_ids())
            assert first.last_synced_at == VIRTUAL_EPOCH + timedelta(seconds=2)

            await lab.clock.sleep(10)
            await lab.observations(2, spacing_s=1.0)
            lab.transport.seen.clear()
            second = await lab.mirror.run()
            assert counts(second) == (2, 2, 0, 0)
            assert second.last_synced_at == VIRTUAL_EPOCH + timedelta(seconds=13)
            assert sorted(lab.mirrored_ids()) == sorted(lab.audit_ids())
            assert len(lab.mirrored_ids()) == 5
            assert [m for m, p, _ in lab.transport.seen if p == AUDIT_PATH] == ["GET"]  # one page

            third = await lab.mirror.run()
            assert counts(third) == (0, 0, 0, 0)
            assert third.last_synced_at == second.last_synced_at
            assert [(e.fetched, e.mirrored) for e in lab.completed()] == [(3, 3), (2, 2), (0, 0)]
            mirror_audits = lab.audit.search(event_types=[AuditEventType.FHIR_AUDIT_MIRROR])
            assert [a.resource_count for a in mirror_audits] == [0, 2, 3]

    run_virtual(main)


def test_events_in_one_instant_split_by_limit_are_neither_lost_nor_counted_twice() -> None:
    async def main() -> None:
        async with mirror_lab(page_size=2) as lab:  # pages smaller than the limit: next links are followed
            await lab.observations(7)
            stamps = {e["meta"]["lastUpdated"] for e in lab.simulator.audit_events()}  # type: ignore[index]
            assert len(stamps) == 1, "the test needs every event in one millisecond"
            first = await lab.mirror.run(limit=3)
            assert counts(first) == (3, 3, 0, 0)
            await lab.observations(1)  # same virtual instant, after the run: a `gt` window would lose it
            assert counts(await lab.mirror.run(limit=3)) == (3, 3, 0, 0)
            assert counts(await lab.mirror.run(limit=3)) == (2, 2, 0, 0)
            assert counts(await lab.mirror.run(limit=3)) == (0, 0, 0, 0)
            ids = lab.mirrored_ids()
            assert len(ids) == len(set(ids)) == 8
            assert set(ids) == lab.audit_ids()

    run_virtual(main)


def test_force_since_earlier_than_last_run_skips_duplicates_and_keeps_the_cursor() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            await lab.observations(4, spacing_s=1.0)
            first = await lab.mirror.run()
            assert counts(first) == (4, 4, 0, 0)

            forced = await lab.mirror.run(force_since=VIRTUAL_EPOCH - timedelta(days=1))
            assert counts(forced) == (4, 0, 4, 0)
            partial = await lab.mirror.run(limit=2, force_since=VIRTUAL_EPOCH)
            assert counts(partial) == (2, 0, 2, 0)
            assert partial.last_synced_at == first.last_synced_at  # never moved backwards
            assert lab.mirror.count() == 4

            await lab.clock.sleep(5)
            await lab.observations(1)
            assert counts(await lab.mirror.run()) == (1, 1, 0, 0)
            assert lab.mirror.stats().total_mirrored == 5

    run_virtual(main)


def test_each_action_code_maps_to_its_event_type() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            created = (await lab.observations(1))[0]  # the simulator's own C, R and U events
            current = await lab.client.connector.read("Observation", created)
            await lab.client.connector.update({**current.body, "status": "amended"})
            injected = {code: lab.inject(action=code) for code in ("C", "R", "U", "D", "E")}
            result = await lab.mirror.run()
            assert counts(result) == (8, 8, 0, 0)
            by_id = {e.fhir_id: e for e in lab.mirror.search(limit=100)}
            expected = {"C": MirrorEventType.FHIR_CREATE, "R": MirrorEventType.FHIR_READ,
                        "U": MirrorEventType.FHIR_UPDATE, "D": MirrorEventType.FHIR_DELETE,
                        "E": MirrorEventType.FHIR_EXECUTE}
            assert {code: (by_id[fid].action, by_id[fid].event_type) for code, fid in injected.items()} == {
                code: (code, event_type) for code, event_type in expected.items()}
            own = [e for e in by_id.values() if e.fhir_id not in injected.values()]
            assert sorted((e.subtype, e.event_type.value) for e in own) == [
                (("create",), "FHIR_CREATE"), (("read",), "FHIR_READ"), (("update",), "FHIR_UPDATE")]
            assert all(e.entities[0].what == f"Observation/{created}" for e in own)
            assert {e.agent.who if e.agent else None for e in own} == {
                f"ClientApplication/{lab.simulator.registry.client_ids()[0]}"}

    run_virtual(main)


def test_search_filters_of_the_runbook() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            org_ext = lab.inject(action="U", extension=[{"url": ORG_EXTENSION_URL, "valueString": "org_abc123"}],
                                 agent=[{"who": {"reference": "Practitioner/prac-123"}, "requestor": True,
                                         "type": {"coding": [{"code": "humanuser"}]}}])
            await lab.clock.sleep(60)
            org_ref = lab.inject(action="C", entity=[{"what": {"reference": "Organization/org_other"}},
                                                     {"what": {"reference": "Patient/pt-xyz"}}])
            await lab.clock.sleep(60)
            ext_reference = lab.inject(action="R", extension=[
                {"url": ORG_EXTENSION_URL, "valueReference": {"reference": "Organization/org_abc123"}}])
            await lab.clock.sleep(60)
            no_org = lab.inject(action="D")
            assert counts(await lab.mirror.run()) == (4, 4, 0, 0)
            t0 = VIRTUAL_EPOCH

            def ids(**filters: Any) -> list[str]:
                return [e.fhir_id for e in lab.mirror.search(**filters)]

            assert ids() == [no_org, ext_reference, org_ref, org_ext]  # newest first
            assert ids(org_id="org_abc123") == [ext_reference, org_ext]
            assert ids(org_id="org_other") == [org_ref]
            assert lab.mirror.search(org_id=None, limit=1)[0].org_id is None
            assert ids(event_types=["FHIR_CREATE", "FHIR_UPDATE"]) == [org_ref, org_ext]
            assert ids(event_types=["FHIR_PURGE"]) == []
            assert ids(since=t0 + timedelta(seconds=60)) == [no_org, ext_reference, org_ref]  # inclusive
            assert ids(until=t0 + timedelta(seconds=60)) == [org_ref, org_ext]
            assert ids(since=t0 + timedelta(seconds=60), until=t0 + timedelta(seconds=120)) == [ext_reference,
                                                                                                  org_ref]
            assert ids(agent_reference="Practitioner/prac-123") == [org_ext]
            assert ids(entity_reference="Patient/pt-xyz") == [org_ref]
            assert ids(entity_reference="Patient/pt-abc", org_id="org_abc123") == [ext_reference, org_ext]
            assert ids(limit=2) == [no_org, ext_reference]
            practitioner = lab.mirror.search(agent_reference="Practitioner/prac-123")[0]
            assert practitioner.agent is not None
            assert practitioner.agent.to_json() == {"type": "humanuser", "who": "Practitioner/prac-123",
                                                    "requestor": True}
            with pytest.raises(ValueError, match="limit"):
                lab.mirror.search(limit=-1)

    run_virtual(main)


def test_outage_mid_run_is_counted_and_the_next_run_resumes() -> None:
    async def main() -> None:
        async with mirror_lab(page_size=3) as lab:
            await lab.observations(8, spacing_s=1.0)
            pages = 0

            async def outage_after_first_page(request: httpx.Request, response: httpx.Response) -> None:
                nonlocal pages
                if request.url.path == AUDIT_PATH:
                    pages += 1
                    if pages == 1:
                        await lab.chaos("outage", {"mode": "status", "status": 503, "scope": {"path": AUDIT_PATH}})

            lab.transport.after = outage_after_first_page
            failed = await lab.mirror.run()
            assert counts(failed) == (3, 3, 0, 1)
            assert failed.failure == "ServerError"
            assert failed.to_json()["failure"] == "ServerError"
            assert pages == 4  # the first page, then the connector's 3 attempts at the second
            assert failed.last_synced_at == VIRTUAL_EPOCH + timedelta(seconds=2)  # the first page was kept
            stats = lab.mirror.stats()
            assert stats.recent_runs[0].status == "failed"
            assert stats.last_synced_at == failed.last_synced_at

            lab.transport.after = None
            await lab.calm()
            resumed = await lab.mirror.run()
            assert counts(resumed) == (5, 5, 0, 0)
            assert resumed.failure is None
            assert "failure" not in resumed.to_json()
            ids = lab.mirrored_ids()
            assert len(ids) == len(set(ids)) == 8
            assert [(e.mirrored, e.errors) for e in lab.completed()] == [(3, 1), (5, 0)]

    run_virtual(main)


def test_outage_before_the_first_page_leaves_the_cursor_where_it_was() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            await lab.observations(2, spacing_s=1.0)
            good = await lab.mirror.run()
            await lab.clock.sleep(5)
            await lab.observations(2, spacing_s=1.0)
            await lab.chaos("outage", {"mode": "drop", "scope": {"path": AUDIT_PATH}})
            failed = await lab.mirror.run()
            assert counts(failed) == (0, 0, 0, 1)
            assert failed.failure == "ConnectionFailed"
            assert failed.last_synced_at == good.last_synced_at
            await lab.calm()
            assert counts(await lab.mirror.run()) == (2, 2, 0, 0)
            assert [r.status for r in lab.mirror.history()] == ["success", "failed", "success"]

    run_virtual(main)


def test_a_malformed_audit_event_is_an_error_counted_once() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            good = [lab.inject(), lab.inject(action="U")]
            bad = [lab.inject(recorded=None), lab.inject(recorded="yesterday"), lab.inject(action="X"),
                   lab.inject(action=None), lab.inject(agent=None), lab.inject(agent=[]), lab.inject(agent="me"),
                   lab.inject(outcome="7"), lab.inject(entity={"what": "Patient/pt-abc"})]
            first = await lab.mirror.run()
            assert counts(first) == (11, 2, 0, 9)
            assert first.failure is None  # malformed events do not fail the run
            assert sorted(lab.mirrored_ids()) == sorted(good)
            assert not set(bad) & set(lab.mirrored_ids())
            again = await lab.mirror.run()  # all in the cursor's instant: not re-read, not re-counted
            assert counts(again) == (0, 0, 0, 0)

    run_virtual(main)


def test_to_json_shapes_of_the_runbook() -> None:
    async def main() -> None:
        async with mirror_lab() as lab:
            empty = lab.mirror.stats().to_json()
            assert empty == {"lastRun": None, "lastSyncedAt": None, "totalMirrored": 0, "recentRuns": []}
            await lab.observations(2, spacing_s=1.0)
            await lab.clock.sleep(3)
            result = await lab.mirror.run()
            body = result.to_json()
            assert list(body) == ["startTime", "endTime", "durationMs", "fetched", "mirrored", "skipped", "errors",
                                  "lastSyncedAt"]
            assert body["startTime"] == "2026-01-05T08:00:04.000Z"
            assert body["lastSyncedAt"] == "2026-01-05T08:00:01.000Z"
            assert (body["fetched"], body["mirrored"], body["durationMs"]) == (2, 2, 0)
            stats = lab.mirror.stats().to_json()
            assert list(stats) == ["lastRun", "lastSyncedAt", "totalMirrored", "recentRuns"]
            assert (stats["lastRun"], stats["lastSyncedAt"], stats["totalMirrored"]) == (
                "2026-01-05T08:00:04.000Z", "2026-01-05T08:00:01.000Z", 2)
            runs = stats["recentRuns"]
            assert isinstance(runs, list)
            assert runs[0]["timestamp"] == "2026-01-05T08:00:04.000Z"
            assert {k: runs[0][k] for k in ("mirrored", "skipped", "errors")} == {"mirrored": 2, "skipped": 0,
                                                                                 "errors": 0}
            event = lab.mirror.search(limit=1)[0].to_json()
            assert {"id", "ts", "eventType", "orgId", "action", "outcome", "agent", "entities"} <= set(event)
            assert event["ts"] == "2026-01-05T08:00:01.000Z"
            assert (event["eventType"], event["action"], event["outcome"], event["source"]) == (
                "FHIR_CREATE", "C", "0", "medplum")
            agent = event["agent"]
            assert isinstance(agent, dict)
            assert list(agent) == ["type", "who", "requestor"]
            entities = event["entities"]
            assert isinstance(entities, list)
            assert list(entities[0]) == ["what", "type", "role", "lifecycle"]
            json.dumps([body, stats, event])  # plain JSON all the way down

    run_virtual(main)


def test_names_and_free_text_are_not_stored() -> None:
    phi = ("Jane Doe", "Dr. Smith", "555-0142", "SmFuZSBEb2U=", "10.1.2.3")

    async def main() -> None:
        async with mirror_lab() as lab:
            lab.inject(agent=[{"who": {"reference": "Practitioner/prac-123", "display": "Dr. Smith"},
                               "name": "Dr. Smith", "altId": "555-0142", "requestor": True,
                               "network": {"address": "10.1.2.3", "type": "2"}}],
                       entity=[{"what": {"reference": "Patient/pt-abc", "display": "Jane Doe"}, "name": "Jane Doe",
                                "description": "Jane Doe's chart", "query": "SmFuZSBEb2U=",
                                "detail": [{"type": "note", "valueString": "Jane Doe"}]},
                               {"what": {"reference": "Patient?name=Jane Doe"}}],
                       outcomeDesc="Jane Doe not found", source={"observer": {"display": "Jane Doe, 555-0142!"}})
            result = await lab.mirror.run()
            assert counts(result) == (1, 1, 0, 0)
            rows = [json.dumps(r) for r in lab.db.connection.execute("SELECT * FROM mirrored_audit_events")]
            rows += [json.dumps(r) for r in lab.db.connection.execute("SELECT * FROM audit_mirror_runs")]
            assert leaks(rows, phi) == []
            assert leaks([json.dumps(e.to_json()) for e in lab.mirror.search()], phi) == []
            assert leaks(event_texts(lab.events), phi) == []
            assert leaks([json.dumps(a.to_json()) for a in lab.audit.search()], phi) == []
            event = lab.mirror.search()[0]
            assert [e.what for e in event.entities] == ["Patient/pt-abc", None]  # the query-like reference dropped
            assert event.agent is not None
            assert event.agent.who == "Practitioner/prac-123"
            assert (event.outcome_desc, event.observer) == (None, None)

    run_virtual(main)


def test_concurrent_runs_are_serialised_and_never_duplicate() -> None:
    async def main() -> None:
        async with mirror_lab(page_size=2) as lab:
            await lab.observations(5, spacing_s=1.0)
            results = await asyncio.gather(*(lab.mirror.run() for _ in range(3)))
            assert sorted(r.mirrored for r in results) == [0, 0, 5]
            assert sum(r.skipped for r in results) == 0
            assert lab.mirror.count() == 5

    run_virtual(main)


def test_bad_arguments_and_the_error_tree() -> None:
    from integrations.sync.audit_mirror import AuditMirrorError, MalformedAuditEvent

    async def main() -> None:
        async with mirror_lab() as lab:
            with pytest.raises(ValueError, match="limit"):
                await lab.mirror.run(limit=0)
            with pytest.raises(ValueError, match="timezone"):
                await lab.mirror.run(force_since=datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose
            with pytest.raises(ValueError, match="page_size"):
                AuditMirror(lab.db, lab.client.connector, lab.clock, page_size=0)
            assert lab.mirror.history() == []  # refused before any run row was written

    assert issubclass(AuditMirrorError, SyncError)
    assert issubclass(MalformedAuditEvent, AuditMirrorError)
    run_virtual(main)
