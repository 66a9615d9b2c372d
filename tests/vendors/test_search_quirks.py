"""How each vendor answers search quirks (reference/vendors.md §1-§4): Epic's warning codes in a 200
searchset (4101 no results, 4122 unknown parameter, 4127 too many patients) and 4100 for a bad value;
Cerner and Allscripts ignore an unknown parameter. (Medplum's 400: tests/simulators/test_medplum_fhir.py.)
Also which vendors take JSON Patch: Epic does not (405, its CapabilityStatement has no patch).
(Cerner's PATCH: tests/vendors/test_cerner.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock
from tests.vendors.support import (
    ALLSCRIPTS_URL,
    CERNER_FHIR,
    CERNER_URL,
    EPIC_FHIR,
    EPIC_URL,
    allscripts_token,
    bearer,
    cerner_token,
    client_for,
    epic_token,
    make_allscripts,
    make_cerner,
    make_epic,
    virtual,
)

Json = dict[str, Any]


def _outcomes(bundle: Json) -> list[Json]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "outcome"]


def _matches(bundle: Json) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def _warnings(bundle: Json) -> list[tuple[str, str, str]]:
    """(Epic code, severity, issue type) of every issue in the Bundle's outcome entries."""
    return [(coding["code"], issue["severity"], issue["code"]) for outcome in _outcomes(bundle)
            for issue in outcome["issue"] for coding in issue["details"]["coding"]]


def _epic_searches(queries: list[dict[str, str]], *, patients: int = 3, **settings: Any) -> list[httpx.Response]:
    async def main(clock: VirtualClock) -> list[httpx.Response]:
        sim = make_epic(clock, **settings)
        sim.seed_patients(patients)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            return [await client.get(f"{EPIC_FHIR}/Patient", params=q, headers=auth) for q in queries]

    return virtual(main)


def test_epic_ignores_an_unknown_parameter_with_a_4122_warning_in_a_200() -> None:
    plain, unknown = _epic_searches([{"_count": "10"}, {"_count": "10", "favourite-colour": "blue"}])
    assert (plain.status_code, unknown.status_code) == (200, 200)
    assert _outcomes(plain.json()) == []  # a clean search carries no outcome entry
    assert len(_matches(plain.json())) == 3
    assert _matches(unknown.json()) == _matches(plain.json())  # searched as if the parameter were absent
    assert unknown.json()["total"] == plain.json()["total"]
    assert _warnings(unknown.json()) == [("4122", "warning", "not-supported")]
    assert "favourite-colour" in _outcomes(unknown.json())[0]["issue"][0]["diagnostics"]
    [self_link] = [link["url"] for link in unknown.json()["link"] if link["relation"] == "self"]
    assert "favourite-colour" not in self_link
    assert unknown.json()["entry"][-1]["search"] == {"mode": "outcome"}  # after the matches


def test_epic_answers_no_results_with_200_and_a_4101_warning() -> None:
    [empty] = _epic_searches([{"family": "Nobody-By-This-Name"}])
    assert empty.status_code == 200
    body = empty.json()
    assert (body["total"], _matches(body)) == (0, [])
    assert _warnings(body) == [("4101", "warning", "informational")]


@pytest.mark.parametrize(("threshold", "first_page", "later_page"), [
    (3, [("4127", "warning", "incomplete")], []),  # 5 patients > 3: first page only
    (5, [], []),  # not more than the threshold
    (None, [], []),  # switched off
])
def test_epic_warns_4127_on_a_patient_search_over_the_threshold(threshold: int | None, first_page: list[Any],
                                                                  later_page: list[Any]) -> None:
    async def main(clock: VirtualClock) -> tuple[Json, Json]:
        sim = make_epic(clock, patient_results_warning=threshold)
        sim.seed_patients(5)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            first = (await client.get(f"{EPIC_FHIR}/Patient", params={"_count": "2"}, headers=auth)).json()
            [next_url] = [link["url"] for link in first["link"] if link["relation"] == "next"]
            return first, (await client.get(next_url, headers=auth)).json()

    first, later = virtual(main)
    assert (_warnings(first), _warnings(later)) == (first_page, later_page)
    assert (len(_matches(first)), len(_matches(later)), first["total"]) == (2, 2, 5)  # warned, not cut


def test_epic_refuses_a_bad_parameter_value_with_fatal_4100() -> None:
    [bad] = _epic_searches([{"birthdate": "not-a-date"}])
    assert bad.status_code == 400
    [issue] = bad.json()["issue"]
    assert (issue["severity"], issue["code"]) == ("fatal", "invalid")
    assert [c["code"] for c in issue["details"]["coding"]] == ["4100"]


def test_cerner_ignores_an_unknown_parameter_without_a_warning() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_cerner(clock)
        sim.seed_patients(3)
        async with client_for(sim.app, CERNER_URL) as client:
            auth = bearer(await cerner_token(client))
            return (await client.get(f"{CERNER_FHIR}/Patient", params={"_count": "10"}, headers=auth),
                    await client.get(f"{CERNER_FHIR}/Patient", params={"_count": "10", "colour": "x"},
                                     headers=auth))

    plain, unknown = virtual(main)
    assert (plain.status_code, unknown.status_code) == (200, 200)
    assert len(_matches(plain.json())) == 3
    assert _matches(unknown.json()) == _matches(plain.json())
    assert _outcomes(unknown.json()) == []


def test_allscripts_ignores_an_unknown_parameter_without_a_warning() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_allscripts(clock)
        sim.seed_patients(3)
        async with client_for(sim.app, ALLSCRIPTS_URL) as client:
            auth = bearer(await allscripts_token(client))
            path = f"{sim.fhir_path}/Patient"
            return (await client.get(path, params={"_count": "10"}, headers=auth),
                    await client.get(path, params={"_count": "10", "colour": "x"}, headers=auth))

    plain, unknown = virtual(main)
    assert (plain.status_code, unknown.status_code) == (200, 200)
    assert len(_matches(plain.json())) == 3
    assert _matches(unknown.json()) == _matches(plain.json())
    assert _outcomes(unknown.json()) == []


def test_epic_refuses_json_patch_and_keeps_the_resource() -> None:
    async def main(clock: VirtualClock) -> tuple[httpx.Response, httpx.Response]:
        sim = make_epic(clock)
        [pid] = sim.seed_patients(1)
        async with client_for(sim.app, EPIC_URL) as client:
            auth = bearer(await epic_token(client, clock))
            url = f"{EPIC_FHIR}/Patient/{pid}"
            refused = await client.patch(url, json=[{"op": "replace", "path": "/gender", "value": "other"}],
                                         headers={**auth, "Content-Type": "application/json-patch+json"})
            return refused, await client.get(url, headers=auth)

    refused, read = virtual(main)
    assert refused.status_code == 405
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert read.headers["etag"] == 'W/"1"'  # no new version
    assert read.json().get("gender") != "other"
