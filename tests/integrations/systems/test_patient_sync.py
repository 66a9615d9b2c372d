"""Multi-system patient sync against the simulators (virtual clock): one patient fetched from two to
four systems and compared field by field; conflicts reported with field paths and redacted digests;
a failing system reported, not raised; no value in events, reprs or logs."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

from harness.clock import VirtualClock, run_virtual
from harness.journal import SyncCompletedEvent, SyncConflictsEvent, SyncStartedEvent, parse_line, systems_entry
from harness.rng import RandomSource
from integrations.events import (
    IntegrationEvent,
    PatientConflictsFound,
    PatientSyncCompleted,
    PatientSyncStarted,
    PatientSyncSystemFailed,
)
from integrations.systems import FieldValue, Identifier, PatientSync, PatientSyncReport, compare
from tests.integrations.systems.support import (
    EMPI,
    EMPI_VALUE,
    PATIENT,
    LabSystem,
    build_registry,
    lab_systems,
    patient,
)

KEY = Identifier(EMPI, EMPI_VALUE)
#: Values of the conflicting records below: none may appear outside the report's values.
PHI = ("Quintero", "Quinteros", "1971-03-09", "1971-09-03", "5550107788", "ada.q@example.org", "Larch", "Fairview",
       "97024", EMPI_VALUE)

SYNC_EVENTS = (PatientSyncStarted, PatientSyncSystemFailed, PatientConflictsFound, PatientSyncCompleted)

Prepare = Callable[[dict[str, LabSystem]], None]


def _sync(records: dict[str, dict[str, Any] | None], *, prepare: Prepare | None = None, seed: int = 7,
          systems_arg: list[str] | None = None) -> tuple[PatientSyncReport, list[IntegrationEvent]]:
    """Seed `records` (None: that system does not hold the patient), then sync across all of them."""
    clock = VirtualClock()
    events: list[IntegrationEvent] = []

    async def main() -> PatientSyncReport:
        systems = lab_systems(clock, list(records), seed=seed)
        for name, body in records.items():
            if body is not None:
                systems[name].seed(body)
        if prepare is not None:
            prepare(systems)
        async with build_registry(systems, clock, events, seed=seed) as registry:
            sync = PatientSync(registry, clock=clock, rng=_rng(seed), listener=events.append)
            return await sync.sync_patient(KEY, systems_arg)

    return run_virtual(main), events


def _rng(seed: int) -> random.Random:
    return RandomSource(seed).stream("sync")


def test_records_that_agree_give_no_conflicts_even_when_formatted_differently() -> None:
    reformatted = patient(name=[{"use": "official", "family": "QUINTERO", "given": ["Ada", " Lux "]}],
                          telecom=[{"system": "email", "value": "Ada.Q@Example.org"},
                                   {"system": "phone", "value": "555-010-7788"}])
    report, events = _sync({"epic": PATIENT, "cerner": reformatted, "medplum": PATIENT})
    assert report.successful_systems == ("epic", "cerner", "medplum")
    assert report.failed_systems == ()
    assert report.conflicts == ()
    assert _sync_events(events) == [PatientSyncStarted, PatientSyncCompleted]
    completed = events[-1]
    assert isinstance(completed, PatientSyncCompleted)
    assert (completed.fetched, completed.failed, completed.conflicts) == (3, 0, 0)


def _conflicting() -> dict[str, dict[str, Any] | None]:
    return {
        "epic": PATIENT,
        "cerner": patient(birthDate="1971-09-03",  # day and month swapped
                          name=[{"use": "official", "family": "Quinteros", "given": ["Ada", "Lux"]}]),
        "medplum": patient(telecom=None, gender="other"),
    }


def test_disagreeing_records_are_reported_field_by_field_with_values_for_the_caller_only(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    report, events = _sync(_conflicting())
    assert [(c.field, c.kind) for c in report.conflicts] == [
        ("name.family", "differs"), ("birthDate", "differs"), ("gender", "differs"),
        ("telecom.phone", "missing"), ("telecom.email", "missing")]
    birth = report.conflict("birthDate")
    assert birth is not None
    assert birth.systems == ("epic", "cerner", "medplum")
    assert [v.value for v in birth.values] == ["1971-03-09", "1971-09-03", "1971-03-09"]  # for the caller
    epic, cerner, medplum = birth.values
    assert epic.digest == medplum.digest != cerner.digest  # equal values, equal digests
    phone = report.conflict("telecom.phone")
    assert phone is not None
    assert [v.value for v in phone.values] == ["5550107788", "5550107788", None]
    assert phone.redacted().endswith("medplum=absent")
    assert report.conflict("address.city") is None
    # events: counts and field paths, never values
    found = [e for e in events if isinstance(e, PatientConflictsFound)]
    assert found == [PatientConflictsFound(sync_id=report.sync_id, conflicts=5,
                                           fields=("name.family", "birthDate", "gender", "telecom.phone",
                                                   "telecom.email"))]
    completed = [e for e in events if isinstance(e, PatientSyncCompleted)]
    assert [(e.fetched, e.failed, e.conflicts) for e in completed] == [(3, 0, 5)]
    journal_lines = [entry.model_dump_json() for e in events if (entry := systems_entry(e, t=2.0)) is not None]
    assert [type(parse_line(line)) for line in journal_lines] == [SyncStartedEvent, SyncConflictsEvent,
                                                                  SyncCompletedEvent]
    # httpx itself logs full URLs (the identifier search's query) at INFO; the CLI quiets it (harness.cli)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("conflicting field" in line for line in ours)
    shown = " ".join([repr(report), *(repr(c) for c in report.conflicts), *(c.redacted() for c in report.conflicts),
                      *(repr(e) for e in events), *journal_lines, *ours])
    leaked = [value for value in PHI if value.casefold() in shown.casefold()]
    assert leaked == []


def test_a_system_that_fails_during_sync_is_reported_not_raised() -> None:
    def prepare(systems: dict[str, LabSystem]) -> None:
        systems["cerner"].fhir_outage(status=503)

    records = {**_conflicting(), "allscripts": None}
    report, events = _sync(records, prepare=prepare)
    assert report.successful_systems == ("epic", "medplum")
    assert report.failed_systems == ("cerner", "allscripts")
    cerner, allscripts = report.result("cerner"), report.result("allscripts")
    assert (cerner.state, cerner.error, cerner.status) == ("failed", "ServerError", 503)
    assert (allscripts.state, allscripts.reason, allscripts.matches) == ("not_found", "not_found", 0)
    # compared between the two that answered: cerner's different birthDate is not in the verdict
    assert [c.field for c in report.conflicts] == ["gender", "telecom.phone", "telecom.email"]
    failed = [(e.system, e.reason) for e in events if isinstance(e, PatientSyncSystemFailed)]
    assert failed == [("cerner", "ServerError"), ("allscripts", "not_found")]
    kinds = [parse_line(entry.model_dump_json()).kind for e in events if (entry := systems_entry(e, 1.0))]
    assert kinds == ["sync.start", "sync.system_failed", "sync.system_failed", "sync.conflicts", "sync.end"]
    completed = [e for e in events if isinstance(e, PatientSyncCompleted)]
    assert [(e.fetched, e.failed, e.conflicts) for e in completed] == [(2, 2, 3)]


def test_a_system_holding_two_matches_is_ambiguous_and_one_record_compares_nothing() -> None:
    def prepare(systems: dict[str, LabSystem]) -> None:
        systems["medplum"].seed(PATIENT)

    report, _ = _sync({"epic": None, "medplum": PATIENT}, prepare=prepare)
    assert report.result("medplum").state == "ambiguous"
    assert report.result("medplum").matches == 2
    assert report.result("epic").state == "not_found"
    assert report.compared == 0
    assert report.conflicts == ()


def test_sync_can_name_its_systems_and_refuses_unknown_or_repeated_ones() -> None:
    report, _ = _sync({"epic": PATIENT, "cerner": PATIENT, "medplum": patient(gender="male")},
                      systems_arg=["cerner", "epic"])
    assert [r.system_id for r in report.systems] == ["cerner", "epic"]
    assert report.conflicts == ()  # medplum's disagreement was not asked for
    with pytest.raises(ValueError, match="named twice"):
        _sync({"epic": PATIENT}, systems_arg=["epic", "epic"])
    with pytest.raises(ValueError, match="at least one system"):
        _sync({"epic": PATIENT}, systems_arg=[])


def test_the_same_seed_gives_the_same_sync_id_and_digests() -> None:
    records = {name: body for name, body in _conflicting().items() if name != "medplum"}
    first, _ = _sync(records, seed=3)
    again, _ = _sync(records, seed=3)
    other, _ = _sync(records, seed=4)
    assert [c.field for c in first.conflicts] == ["name.family", "birthDate"]
    assert first.sync_id == again.sync_id != other.sync_id
    assert [c.redacted() for c in first.conflicts] == [c.redacted() for c in again.conflicts]
    assert [c.redacted() for c in first.conflicts] != [c.redacted() for c in other.conflicts]  # salted per sync


def test_compare_normalises_and_needs_two_records() -> None:
    base = patient()
    assert compare([("a", base)], salt=b"s") == ()
    spaced = patient(address=[{"use": "home", "line": ["12  Larch   Way"], "city": "fairview", "state": "or",
                               "postalCode": "97024", "country": "us"},
                              {"use": "work", "line": ["1 Office Park"], "city": "Elsewhere"}])
    assert compare([("a", base), ("b", spaced)], salt=b"s") == ()  # the home address is the one compared
    moved = patient(address=[{"use": "home", "city": "Gresham", "state": "OR", "postalCode": "97030",
                              "country": "US"}])
    fields = [(c.field, c.kind) for c in compare([("a", base), ("b", moved)], salt=b"s")]
    assert fields == [("address.line", "missing"), ("address.city", "differs"), ("address.postalCode", "differs")]
    assert "Gresham" not in repr(FieldValue(system_id="b", value="gresham", digest="00"))


def _sync_events(events: list[IntegrationEvent]) -> list[type]:
    return [type(e) for e in events if isinstance(e, SYNC_EVENTS)]
