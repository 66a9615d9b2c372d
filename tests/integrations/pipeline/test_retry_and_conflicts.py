"""Retry as the vendor sees it (request times on the virtual clock), and 412/409 answered by re-reading
and re-applying the change through the caller's merge callback.

Numbers: backoff 1 s -> 10 s cap with ±25 % jitter (runbook 002_437ee203264dfa64.txt §2.1); "412 |
Precondition failed | ETag mismatch, retry" (runbook 000_030ea53f0735abf7.txt §4); Cerner answers a
stale version with 409 (reference/vendors.md §2)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import RetryScheduled, VersionConflict
from integrations.fhir import (
    Conflict,
    ConnectorError,
    FhirResource,
    JsonValue,
    PreconditionFailed,
    RetryPolicy,
    ServerError,
)
from tests.integrations.fakes import FakeVendor, fhir_json, make_kit, outcome, patient
from tests.integrations.pipeline.lab import of_type, vendor_lab

Merge = Callable[[FhirResource], dict[str, JsonValue] | Awaitable[dict[str, JsonValue] | None] | None]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_observed_backoff_stays_within_the_jitter_bounds_and_the_cap(seed: int) -> None:
    async def main() -> tuple[list[float], list[float]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.extend([lambda r: httpx.Response(503)] * 7)
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=8), seed=seed)
        await kit.connector.read("Patient", "p1")
        await kit.close()
        return [r.t for r in vendor.requests], [e.delay_s for e in of_type(RetryScheduled, kit.events)]

    times, scheduled = run_virtual(main)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx(scheduled)  # the connector slept exactly what it announced
    for gap, base in zip(gaps, [1, 2, 4, 8, 10, 10, 10], strict=True):
        assert 0.75 * base <= gap <= 1.25 * base
    assert max(gaps) <= 12.5  # the cap (10 s) plus its jitter


def test_retry_after_wins_over_the_backoff() -> None:
    async def main() -> tuple[list[float], list[tuple[float, float | None]]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.append(lambda r: outcome(429, "throttled", "Too many requests"))
        vendor.script.append(lambda r: fhir_json(503, {}, {"Retry-After": "17"}))
        vendor.script.append(lambda r: fhir_json(429, {}, {"Retry-After": "7"}))
        kit = make_kit(vendor, retry=RetryPolicy(max_attempts=4))
        await kit.connector.read("Patient", "p1")
        await kit.close()
        retries = of_type(RetryScheduled, kit.events)
        return [r.t for r in vendor.requests], [(e.delay_s, e.retry_after_s) for e in retries]

    times, delays = run_virtual(main)
    backoff = times[1] - times[0]
    assert 0.75 <= backoff <= 1.25  # no Retry-After: the jittered backoff
    assert delays[1:] == [(17.0, 17.0), (7.0, 7.0)]  # 17 s and 7 s beat backoffs of 2 s and 4 s (±25 %)
    assert [b - a for a, b in itertools.pairwise(times[1:])] == [17.0, 7.0]


@pytest.mark.parametrize(("if_none_exist", "requests"), [(None, 1), ("identifier=urn:mrn|42", 2)])
def test_only_a_conditional_create_is_resent(if_none_exist: str | None, requests: int) -> None:
    async def main() -> tuple[ConnectorError | FhirResource, list[str | None]]:
        vendor = FakeVendor(VirtualClock())
        vendor.script.append(lambda r: httpx.Response(503))
        vendor.script.append(lambda r: fhir_json(201, patient("new")))
        kit = make_kit(vendor)
        try:
            result: ConnectorError | FhirResource = await kit.connector.create(
                {"resourceType": "Patient"}, if_none_exist=if_none_exist)
        except ConnectorError as error:
            result = error
        await kit.close()
        return result, [r.headers.get("if-none-exist") for r in vendor.requests]

    result, sent = run_virtual(main)
    assert sent == [if_none_exist] * requests
    if if_none_exist is None:
        assert isinstance(result, ServerError)  # a plain POST may have been applied: never resent
    else:
        assert isinstance(result, FhirResource)
        assert result.id == "new"


@pytest.mark.parametrize(("name", "stale_status"), [("medplum", 412), ("epic", 412), ("cerner", 409)])
def test_a_stale_if_match_is_merged_into_the_fresh_version_when_the_caller_allows(name: str,
                                                                                 stale_status: int) -> None:
    async def main() -> tuple[FhirResource, FhirResource, ConnectorError, list[VersionConflict]]:
        async with vendor_lab(name, patients=1) as lab:
            connector = lab.client.connector
            [pid] = lab.patients
            mine = await connector.read("Patient", pid)
            # someone else changes the patient first
            theirs = await connector.update({**mine.body, "gender": "other"}, if_match=mine.version_id)
            with pytest.raises(ConnectorError) as refused:
                await connector.update({**mine.body, "active": False}, if_match=mine.version_id)

            seen: list[FhirResource] = []

            def merge(current: FhirResource) -> dict[str, JsonValue]:
                seen.append(current)
                return {**current.body, "active": False}

            merged = await connector.update({**mine.body, "active": False}, if_match=mine.version_id,
                                            on_conflict=merge)
            assert [s.version_id for s in seen] == [theirs.version_id]
            return theirs, merged, refused.value, of_type(VersionConflict, lab.events)

    theirs, merged, refused, conflicts = run_virtual(main)
    assert refused.status == stale_status
    assert type(refused) is (PreconditionFailed if stale_status == 412 else Conflict)
    assert merged.version_id not in (None, theirs.version_id)
    assert (merged.body["gender"], merged.body["active"]) == ("other", False)  # both changes survive
    assert [(e.status, e.attempt, e.merged) for e in conflicts] == [(stale_status, 1, True)]


def _conflicting_vendor(status: int = 412) -> FakeVendor:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return outcome(status, "processing", "Precondition Failed")
        return fhir_json(200, patient("p1", "9"), {"ETag": 'W/"9"'})

    return FakeVendor(VirtualClock(), default=answer)


def _update(vendor: FakeVendor, merge: Merge | None, *, if_match: str | None = "1",
            max_conflicts: int = 3) -> tuple[BaseException, list[str], list[VersionConflict]]:
    async def main() -> tuple[BaseException, list[str], list[VersionConflict]]:
        kit = make_kit(vendor)
        with pytest.raises((ConnectorError, ValueError)) as caught:
            await kit.connector.update({"resourceType": "Patient", "id": "p1"}, if_match=if_match, on_conflict=merge,
                                       max_conflicts=max_conflicts)
        await kit.close()
        return caught.value, [f"{r.method} {r.headers.get('if-match')}" for r in vendor.requests], \
            of_type(VersionConflict, kit.events)

    return run_virtual(main)


def test_without_a_merge_callback_412_surfaces_as_precondition_failed_after_one_put() -> None:
    error, sent, conflicts = _update(_conflicting_vendor(), None)
    assert type(error) is PreconditionFailed
    assert sent == ['PUT W/"1"']  # never resent with the same, stale If-Match
    assert conflicts == []


def test_a_merge_that_declines_surfaces_the_412() -> None:
    error, sent, conflicts = _update(_conflicting_vendor(), lambda current: None)
    assert type(error) is PreconditionFailed
    assert sent == ['PUT W/"1"', "GET None"]
    assert [e.merged for e in conflicts] == [False]


def test_conflicts_are_merged_at_most_max_conflicts_times_with_an_async_merge() -> None:
    async def merge(current: FhirResource) -> dict[str, JsonValue]:
        return {**current.body, "active": True}

    error, sent, conflicts = _update(_conflicting_vendor(), merge, max_conflicts=2)
    assert type(error) is PreconditionFailed
    assert sent == ['PUT W/"1"', "GET None", 'PUT W/"9"', "GET None", 'PUT W/"9"']
    assert [(e.attempt, e.merged) for e in conflicts] == [(1, True), (2, True)]


def test_a_merge_must_return_the_same_resource() -> None:
    error, _, _ = _update(_conflicting_vendor(), lambda current: {"resourceType": "Patient", "id": "p2"})
    assert isinstance(error, ValueError)
    assert "same resource" in str(error)


def test_a_409_without_if_match_is_not_a_version_conflict() -> None:
    calls: list[FhirResource] = []

    def merge(current: FhirResource) -> None:
        calls.append(current)

    error, sent, _ = _update(_conflicting_vendor(409), merge, if_match=None)
    assert type(error) is Conflict
    assert sent == ["PUT None"]
    assert calls == []

