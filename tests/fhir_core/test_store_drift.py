"""Store operations the admin drift API and transactions rely on: touch, shift, silent replace, atomic."""

from __future__ import annotations

import random

import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.errors import InvalidResource, ResourceNotFound
from simulators.fhir import MultipleMatches, ResourceDeleted, ResourceStore, integer_versions, uuid_ids
from tests.fhir_core.support import patient


def _store() -> ResourceStore:
    return ResourceStore(VirtualClock(), new_id=uuid_ids(random.Random(3)), new_version=integer_versions())


def test_drift_operations() -> None:
    async def main() -> None:
        store = _store()
        pid = store.create(patient())["id"]
        touched = store.touch("Patient", pid)
        assert touched["meta"]["versionId"] == "2"
        assert {k: v for k, v in touched.items() if k != "meta"} == \
            {k: v for k, v in store.vread("Patient", pid, "1").items() if k != "meta"}
        shifted = store.shift_last_updated("Patient", pid, -86_400)
        assert shifted["meta"] == {"versionId": "2", "lastUpdated": "2026-01-04T08:00:00.000Z"}
        assert store.history("Patient", pid)[0].last_updated == "2026-01-04T08:00:00.000Z"
        replaced = store.replace_silently("Patient", pid, patient(gender="male"))
        assert replaced["gender"] == "male"
        assert replaced["meta"] == shifted["meta"]  # the ETag now lies
        with pytest.raises(InvalidResource):
            store.replace_silently("Patient", pid, patient(birthDate="never"))
        assert store.read("Patient", pid)["gender"] == "male"
        store.delete("Patient", pid)
        for drift in (lambda: store.touch("Patient", pid), lambda: store.shift_last_updated("Patient", pid, 1),
                      lambda: store.replace_silently("Patient", pid, patient())):
            with pytest.raises(ResourceDeleted):
                drift()
        with pytest.raises(ResourceNotFound):
            store.touch("Patient", "never")

    run_virtual(main)


def test_atomic_undoes_everything_in_the_block() -> None:
    async def main() -> None:
        store = _store()
        keep = store.create(patient())["id"]
        def failing_block() -> None:
            with store.atomic():
                store.create(patient())
                store.update({**store.read("Patient", keep), "gender": "male"})
                store.delete("Patient", keep)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            failing_block()
        assert store.count("Patient") == 1
        assert store.read("Patient", keep)["gender"] == "female"
        assert len(store.history("Patient")) == 1
        with store.atomic():
            store.create(patient())
        assert store.count("Patient") == 2

    run_virtual(main)


def test_conditional_create_with_two_matches_and_reserved_ids() -> None:
    async def main() -> None:
        store = _store()
        store.create(patient())
        store.create(patient())
        with pytest.raises(MultipleMatches):
            store.conditional_create(patient(), lambda r: r["gender"] == "female")
        reserved = store.new_id()
        assert store.create(patient(), assigned_id=reserved)["id"] == reserved
        with pytest.raises(InvalidResource):
            store.create(patient(), assigned_id=reserved)
        assert store.create({"resourceType": "AuditEvent", "anything": "goes"}, validate=False)["anything"] == "goes"

    run_virtual(main)
