"""The shared FHIR store: ids, versions, timestamps, conditional writes, validation (R4B)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.errors import InvalidResource, ResourceNotFound, VersionConflict
from simulators.fhir import (
    ResourceStore,
    format_instant,
    integer_versions,
    uuid_ids,
    uuid_versions,
    validate_resource,
)
from simulators.fhir.outcome import operation_outcome
from simulators.fhir.store import Resource


def _store(clock: VirtualClock | None = None, seed: int = 1, integers: bool = False) -> ResourceStore:
    rng = random.Random(seed)
    versions = integer_versions() if integers else uuid_versions(rng)
    return ResourceStore(clock or VirtualClock(), new_id=uuid_ids(rng), new_version=versions)


PATIENT: Resource = {"resourceType": "Patient", "gender": "female", "birthDate": "1990-01-01"}


def test_create_assigns_id_version_and_timestamp() -> None:
    clock = VirtualClock()

    async def main() -> Resource:
        store = _store(clock)
        await clock.sleep(1.5)
        return store.create({**PATIENT, "id": "ignored", "meta": {"versionId": "x", "profile": ["urn:p"]}})

    created = run_virtual(main)
    assert created["id"] != "ignored"
    assert created["meta"]["versionId"] != "x"
    assert created["meta"]["profile"] == ["urn:p"]  # other meta survives
    assert created["meta"]["lastUpdated"] == "2026-01-05T08:00:01.500Z"
    assert list(created)[:3] == ["resourceType", "id", "meta"]


def test_integer_versions_count_up() -> None:
    async def main() -> list[str]:
        store = _store(integers=True)
        created = store.create(PATIENT)
        updated = store.update({**created, "gender": "male"}, expected_version="1")
        return [created["meta"]["versionId"], updated["meta"]["versionId"], store.version("Patient", created["id"])]

    assert run_virtual(main) == ["1", "2", "2"]
    assert integer_versions(0)(None) == "0"


def test_update_checks_the_expected_version() -> None:
    async def main() -> None:
        store = _store()
        created = store.create(PATIENT)
        v1 = created["meta"]["versionId"]
        store.update({**created, "gender": "male"}, expected_version=v1)
        with pytest.raises(VersionConflict) as conflict:
            store.update({**created, "gender": "other"}, expected_version=v1)
        assert conflict.value.expected == v1
        assert store.read("Patient", created["id"])["gender"] == "male"

    run_virtual(main)


def test_update_of_a_missing_resource_is_not_found() -> None:
    async def main() -> None:
        store = _store()
        with pytest.raises(ResourceNotFound):
            store.update({**PATIENT, "id": "nope"})
        with pytest.raises(ResourceNotFound):
            store.read("Patient", "nope")

    run_virtual(main)


def test_upsert_creates_then_updates() -> None:
    async def main() -> list[bool]:
        store = _store()
        first, created = store.upsert({**PATIENT, "id": "p-1"})
        second, created_again = store.upsert({**PATIENT, "id": "p-1", "gender": "male"},
                                             expected_version=first["meta"]["versionId"])
        with pytest.raises(ResourceNotFound):
            store.upsert({**PATIENT, "id": "p-2"}, expected_version="v")
        assert second["gender"] == "male"
        assert store.count("Patient") == 1
        return [created, created_again]

    assert run_virtual(main) == [True, False]


def test_search_by_ids_keeps_insertion_order() -> None:
    async def main() -> None:
        store = _store()
        ids = [store.create(PATIENT)["id"] for _ in range(4)]
        store.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
        assert [r["id"] for r in store.search("Patient", ids=[ids[3], ids[0]])] == [ids[0], ids[3]]
        assert len(store.search("Patient")) == 4
        assert store.search("Encounter") == []
        assert len(list(store)) == 5

    run_virtual(main)


def test_callers_cannot_change_stored_data() -> None:
    async def main() -> None:
        store = _store()
        body = {**PATIENT, "name": [{"family": "Doe"}]}
        created = store.create(body)
        body["name"][0]["family"] = "Changed"
        created["name"][0]["family"] = "Changed"
        store.read("Patient", created["id"])["name"][0]["family"] = "Changed"
        store.search("Patient")[0]["name"][0]["family"] = "Changed"
        assert store.read("Patient", created["id"])["name"][0]["family"] == "Doe"

    run_virtual(main)


@pytest.mark.parametrize("resource", [
    {"resourceType": "Observation", "status": "final"},
    {"resourceType": "Patient", "birthDate": "01/02/1990"},
    {"resourceType": "Patient", "unknownField": 1},
    {"resourceType": "NotAType"},
    {"gender": "female"},
    {"resourceType": "Patient", "id": "has spaces"},
])
def test_validation_rejects_invalid_resources(resource: Resource) -> None:
    with pytest.raises(InvalidResource):
        validate_resource(resource)


def test_validation_uses_r4_not_r5() -> None:
    # R4's medicationCodeableConcept: valid in R4 (R4B models), rejected by fhir.resources' default R5 models
    validate_resource({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                       "subject": {"reference": "Patient/1"}, "medicationCodeableConcept": {"text": "aspirin"}})


def test_invalid_writes_store_nothing() -> None:
    async def main() -> int:
        store = _store()
        with pytest.raises(InvalidResource):
            store.create({"resourceType": "Observation", "status": "final"})
        with pytest.raises(InvalidResource):
            store.upsert({"resourceType": "Patient"})  # no id
        return store.count("Observation") + store.count("Patient")

    assert run_virtual(main) == 0


def test_format_instant() -> None:
    moment = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_instant(moment) == "2026-01-05T08:00:00.123Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_instant(datetime(2026, 1, 5))  # noqa: DTZ001 - the naive datetime is the point


def test_operation_outcome_builder() -> None:
    assert operation_outcome("invalid", "Bad", expression=["Patient.id"], diagnostics="d") == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "details": {"text": "Bad"}, "diagnostics": "d",
                   "expression": ["Patient.id"]}],
    }
