"""Property-based: any sequence of create/update/delete/conditional operations keeps versions monotonic
and `_history` complete (every successful write is exactly one version; failed writes leave no trace)."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.errors import StoreError
from simulators.fhir import ResourceStore, integer_versions, uuid_ids, uuid_versions
from simulators.fhir.search import parse_query

OPS = ("create", "update", "upsert", "delete", "conditional_create", "conditional_update", "modify", "touch",
       "shift", "transaction")
GENDERS = ("female", "male", "other", "robot-is-accepted")


class StepClock:
    """A clock tests move by hand; async parts unused by the store."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - the store never sleeps
        self.t += seconds

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:  # pragma: no cover
        raise NotImplementedError


op = st.tuples(st.sampled_from(OPS), st.integers(0, 5), st.sampled_from(GENDERS),
               st.sampled_from(("none", "current", "stale")), st.integers(0, 90), st.booleans())


def _merged(resource: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {**resource, **changes}


def _where(gender: str) -> Callable[[Any], bool]:
    return parse_query("Patient", [("gender", gender)]).matches


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=30), integers=st.booleans(), seed=st.integers(0, 2**32))
def test_versions_stay_monotonic_and_history_complete(ops: list[tuple[str, int, str, str, int, bool]],
                                                      integers: bool, seed: int) -> None:
    clock = StepClock()
    rng = random.Random(seed)
    store = ResourceStore(clock, new_id=uuid_ids(rng), new_version=integer_versions() if integers else
                          uuid_versions(rng))
    ids: list[str] = []
    writes: dict[str, int] = {}  # id -> versions written (the model)
    shifted: set[str] = set()

    def expected(resource_id: str, mode: str) -> str | None:
        if mode == "none" or not store.history("Patient", resource_id):
            return None
        current = store.history("Patient", resource_id)[0].version_id
        return current if mode == "current" else f"stale-{current}"

    for name, index, gender, mode, step, fail in ops:
        clock.t += step
        target = ids[index % len(ids)] if ids else None
        body: dict[str, Any] = {"resourceType": "Patient", "gender": gender}
        if fail:
            body["birthDate"] = "not-a-date"  # invalid: the write must leave no trace
        before = {i: len(store.history("Patient", i)) for i in ids}
        try:
            if name == "create":
                made = store.create(body)
                ids.append(made["id"])
                writes[made["id"]] = 1
            elif target is None:
                continue
            elif name == "update":
                store.update({**body, "id": target}, expected_version=expected(target, mode))
                writes[target] += 1
            elif name == "upsert":
                store.upsert({**body, "id": target}, expected_version=expected(target, mode))
                writes[target] += 1
            elif name == "delete":
                if store.delete("Patient", target, expected_version=expected(target, mode)) is not None:
                    writes[target] += 1
            elif name == "conditional_create":
                made, created = store.conditional_create(body, _where(gender))
                if created:
                    ids.append(made["id"])
                    writes[made["id"]] = 1
            elif name == "conditional_update":
                made, created = store.conditional_update(body, _where(gender))
                if created:
                    ids.append(made["id"])
                writes[made["id"]] = writes.get(made["id"], 0) + 1
            elif name == "modify":
                store.modify("Patient", target, functools.partial(_merged, changes=body),
                             expected_version=expected(target, mode))
                writes[target] += 1
            elif name == "touch":
                store.touch("Patient", target)
                writes[target] += 1
            elif name == "shift":
                store.shift_last_updated("Patient", target, -step)
                shifted.add(target)
            elif name == "transaction":
                with store.atomic():
                    store.touch("Patient", target)
                    store.create({"resourceType": "Patient", "gender": gender, "birthDate": "1999-99-99"})
        except StoreError:
            assert {i: len(store.history("Patient", i)) for i in before} == before, f"{name} failed but wrote"

    total = 0
    for resource_id in ids:
        history = store.history("Patient", resource_id)
        total += len(history)
        assert len(history) == writes[resource_id], resource_id
        version_ids = [v.version_id for v in reversed(history)]
        assert len(set(version_ids)) == len(version_ids)
        if integers:
            assert [int(v) for v in version_ids] == list(range(1, len(version_ids) + 1))
        if resource_id not in shifted:
            stamps = [v.last_updated for v in reversed(history)]
            assert stamps == sorted(stamps)
        assert history[-1].method == "POST" or history[-1].method == "PUT"
        if history[0].deleted:
            assert not store.exists("Patient", resource_id)
        else:
            assert store.read("Patient", resource_id) == history[0].resource
            assert store.version("Patient", resource_id) == history[0].version_id
    assert len(store.history("Patient")) == total
