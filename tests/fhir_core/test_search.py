"""Search: parameters, prefixes, sorting, paging links through another host:port, absurd input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.clock import run_virtual
from simulators.fhir import FhirPersonality
from simulators.fhir.search import date_range, parse_query
from tests.fhir_core.support import PLAIN, Core, client_for, core_app, observation, outcome_of, patient, run

STRICT = FhirPersonality(name="strict", unknown_search_param="error", max_count=50, count_over_max="error")
CURSOR = FhirPersonality(name="cursor", paging="cursor", cursor_ttl_s=300)


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


async def _population(client: httpx.AsyncClient) -> dict[str, str]:
    """Three patients and four observations with known values; returns name -> id."""
    made: dict[str, str] = {}
    for name, given, birth, gender in (("Alvarez", "Ana", "1950-06-15", "female"),
                                       ("Brown", "Bo", "1980-01-01", "male"),
                                       ("Chén", "Chloé", "2001-12-31", "female")):
        body = patient(name=[{"family": name, "given": [given]}], birthDate=birth, gender=gender,
                       identifier=[{"system": "urn:mrn", "value": f"MRN-{name[:3].upper()}"}])
        made[name] = (await client.post("/Patient", json=body)).json()["id"]
    for key, who, code, when, status in (("o1", "Alvarez", "8867-4", "2024-01-10T09:00:00Z", "final"),
                                         ("o2", "Alvarez", "8310-5", "2024-03-01", "preliminary"),
                                         ("o3", "Brown", "8867-4", "2025-07-04T12:30:00+02:00", "final"),
                                         ("o4", "Chén", "8867-4", "2023-12", "final")):
        body = observation(made[who], status=status, effectiveDateTime=when,
                           code={"coding": [{"system": "http://loinc.org", "code": code}]})
        made[key] = (await client.post("/Observation", json=body)).json()["id"]
    return made


@pytest.mark.parametrize(("resource_type", "params", "expected"), [
    ("Patient", {"family": "alv"}, ["Alvarez"]),
    ("Patient", {"name": "chen"}, ["Chén"]),  # case- and accent-insensitive, at the start
    ("Patient", {"family:exact": "alvarez"}, []),
    ("Patient", {"given:contains": "lo"}, ["Chén"]),
    ("Patient", {"identifier": "urn:mrn|MRN-BRO"}, ["Brown"]),
    ("Patient", {"identifier": "MRN-BRO,MRN-CHÉ"}, ["Brown", "Chén"]),
    ("Patient", {"identifier": "urn:other|MRN-BRO"}, []),
    ("Patient", {"gender": "female"}, ["Alvarez", "Chén"]),
    ("Patient", {"gender:not": "female"}, ["Brown"]),
    ("Patient", {"birthdate": "1980"}, ["Brown"]),
    ("Patient", {"birthdate": "lt1980-01-01"}, ["Alvarez"]),
    ("Patient", {"birthdate": "ge1980-01-01"}, ["Brown", "Chén"]),
    ("Patient", {"birthdate": "sa1980-01-01"}, ["Chén"]),
    ("Patient", {"birthdate": "ne1980-01-01"}, ["Alvarez", "Chén"]),
    ("Observation", {"code": "http://loinc.org|8867-4"}, ["o1", "o3", "o4"]),
    ("Observation", {"code": "8310-5", "status": "preliminary"}, ["o2"]),
    ("Observation", {"status": "final", "date": "ge2024-01-01"}, ["o1", "o3"]),
    ("Observation", {"date": "2024-01-10"}, ["o1"]),
    ("Observation", {"date": "eb2024-01-01"}, ["o4"]),
    ("Observation", {"date": "gt2025-07-04T10:00:00Z"}, ["o3"]),  # 12:30+02:00 is 10:30Z
    ("Observation", {"date": "le2023-12-15"}, ["o4"]),  # the month overlaps the day
])
def test_search_parameters(resource_type: str, params: dict[str, str], expected: list[str]) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> list[str]:
        made = await _population(client)
        names = {v: k for k, v in made.items()}
        bundle = (await client.get(f"/{resource_type}", params=params)).json()
        assert bundle["total"] == len(bundle.get("entry", []))
        return sorted(names[i] for i in _ids(bundle))

    assert run(scenario) == sorted(expected)


def test_patient_and_subject_references_in_every_form() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        made = await _population(client)
        a = made["Alvarez"]
        for value in (a, f"Patient/{a}", f"http://elsewhere/fhir/Patient/{a}"):
            assert sorted(_ids((await client.get("/Observation", params={"patient": value})).json())) == \
                sorted([made["o1"], made["o2"]])
        assert len(_ids((await client.get("/Observation", params={"subject:Patient": a})).json())) == 2
        assert _ids((await client.get("/Observation", params={"subject": f"Group/{a}"})).json()) == []
        outcome_of(await client.get("/Observation", params={"patient": f"Group/{a}"}), 400)
        both = await client.get("/Observation", params=[("patient", a), ("code", "8310-5")])
        assert _ids(both.json()) == [made["o2"]]

    run(scenario)


def test_sort_and_last_updated() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        made = await _population(client)
        await core.clock.sleep(3600)
        body = core.store.read("Patient", made["Brown"])
        await client.put(f"/Patient/{made['Brown']}", json=body)
        by_birth = _ids((await client.get("/Patient", params={"_sort": "-birthdate"})).json())
        assert by_birth == [made["Chén"], made["Brown"], made["Alvarez"]]
        by_name = _ids((await client.get("/Patient", params={"_sort": "family"})).json())
        assert by_name == [made["Alvarez"], made["Brown"], made["Chén"]]
        recent = _ids((await client.get("/Patient", params={"_lastUpdated": "gt2026-01-05T08:30:00Z"})).json())
        assert recent == [made["Brown"]]
        dated = _ids((await client.get("/Observation", params={"_sort": "date"})).json())
        assert dated == [made["o4"], made["o1"], made["o2"], made["o3"]]

    run(scenario)


def test_paging_links_follow_the_requests_own_host_and_port() -> None:
    """A client behind a proxy on another port must get links it can follow (vendors.md §9.5)."""
    async def main() -> None:
        core = core_app()
        for n in range(7):
            core.store.create(patient(id=f"p{n}"))
        seen: list[str] = []
        async with client_for(core, "http://proxy.local:18443") as client:
            url: str | None = "/Patient?_count=3"
            pages = 0
            while url:
                bundle = (await client.get(url)).json()
                assert bundle["total"] == 7
                seen += _ids(bundle)
                links = {link["relation"]: link["url"] for link in bundle["link"]}
                assert all(u.startswith("http://proxy.local:18443/fhir/Patient?") for u in links.values())
                url = links.get("next")
                pages += 1
            assert pages == 3
        assert len(seen) == len(set(seen)) == 7
        assert seen == [r["id"] for r in core.store.search("Patient")]

    run_virtual(main)


def test_offset_links_keep_the_query_and_previous() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        for _ in range(5):
            await client.post("/Patient", json=patient(gender="male"))
        second = (await client.get("/Patient", params={"gender": "male", "_count": "2", "_offset": "2",
                                                       "colour": "blue"})).json()
        links = {link["relation"]: link["url"] for link in second["link"]}
        assert links["self"] == "http://fhir.test/fhir/Patient?gender=male&_count=2&_offset=2"  # ignored: gone
        assert links["next"] == "http://fhir.test/fhir/Patient?gender=male&_count=2&_offset=4"
        assert links["previous"] == "http://fhir.test/fhir/Patient?gender=male&_count=2"
        last = (await client.get(links["next"])).json()
        assert len(last["entry"]) == 1
        assert "next" not in {link["relation"] for link in last["link"]}

    run(scenario)


def test_cursor_pages_expire_on_the_clock() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        for _ in range(4):
            await client.post("/Patient", json=patient())
        first = (await client.get("/Patient", params={"_count": "2"})).json()
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        assert "_page=" in next_url
        assert "_count" not in next_url  # opaque: the token stands for the query
        second = await client.get(next_url)
        assert len(second.json()["entry"]) == 2
        await core.clock.sleep(301)
        outcome_of(await client.get(next_url), 410)
        outcome_of(await client.get("/Patient", params={"_page": "forged"}), 410)

    run(scenario, CURSOR)


@pytest.mark.parametrize(("personality", "params", "status"), [
    (PLAIN, {"_count": "0"}, 200), (PLAIN, {"_count": "-5"}, 400), (PLAIN, {"_count": "ten"}, 400),
    (PLAIN, {"_count": "99999999999999999999"}, 400), (PLAIN, {"_count": "5000"}, 200),
    (STRICT, {"_count": "51"}, 400), (PLAIN, {"_offset": "-1"}, 400),
    (PLAIN, {"colour": "blue"}, 200), (STRICT, {"colour": "blue"}, 400), (STRICT, {"_sort": "colour"}, 400),
    (PLAIN, {"birthdate": "2024-13-45"}, 400), (PLAIN, {"birthdate": "xx2024"}, 400),
    (PLAIN, {"family:sounds-like": "doe"}, 400), (PLAIN, {"gender:missing": "maybe"}, 400),
    (PLAIN, {"_summary": "everything"}, 400), (PLAIN, {"family": "x" * 3000}, 400),
    (PLAIN, {"family": "'; DROP TABLE patients;--"}, 200), (PLAIN, {"_id": "../../etc/passwd"}, 200),
    (PLAIN, {"identifier": "<script>alert(1)</script>|x"}, 200), (PLAIN, {"name": "%00\x00{$ne:null}"}, 200),
])
def test_absurd_and_hostile_search_input_is_a_4xx_or_an_empty_match(personality: FhirPersonality,
                                                                    params: dict[str, str], status: int) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> httpx.Response:
        await client.post("/Patient", json=patient())
        return await client.get("/Patient", params=params)

    response = run(scenario, personality)
    if status == 200:
        assert response.status_code == 200, response.text
        bundle = response.json()
        if "_count" in params or "colour" in params:
            assert bundle["total"] == 1
        else:
            assert bundle["total"] == 0  # hostile values are data: they match nothing
    else:
        outcome_of(response, status)


def test_count_zero_and_summary_count_give_the_total_only_and_count_is_clamped() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            await client.post("/Patient", json=patient())
        for params in ({"_count": "0"}, {"_summary": "count"}):
            bundle = (await client.get("/Patient", params=params)).json()
            assert bundle["total"] == 3
            assert "entry" not in bundle
        clamped = (await client.get("/Patient", params={"_count": "5000"})).json()
        assert next(link["url"] for link in clamped["link"] if link["relation"] == "self").endswith("_count=1000")

    run(scenario)


def test_elements_subsets_and_post_search_matches_get() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        made = await _population(client)
        subset = (await client.get("/Patient", params={"_elements": "gender", "family": "Brown"})).json()
        resource = subset["entry"][0]["resource"]
        assert set(resource) == {"resourceType", "id", "meta", "gender"}
        assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"
        posted = await client.post("/Patient/_search", data={"family": "Brown"})
        assert _ids(posted.json()) == [made["Brown"]]
        outcome_of(await client.post("/Patient/_search", json={"family": "Brown"}), 415)

    run(scenario)


def test_parse_query_and_date_ranges_directly() -> None:
    assert date_range("2024") is not None
    start, end = date_range("2024-02") or (None, None)
    assert (start and start.isoformat(), end and end.isoformat()) == ("2024-02-01T00:00:00+00:00",
                                                                      "2024-03-01T00:00:00+00:00")
    assert date_range("2024-02-30") is None
    assert date_range("9999-12-31") is not None
    query = parse_query("Patient", [("family", "a,b"), ("family", "c"), ("colour", "x"), ("_sort", "-_id")])
    assert [len(f.values) for f in query.filters] == [2, 1]
    assert query.ignored == ("colour",)
    assert query.sort == (("_id", True),)


def test_bundles_are_encoded_exactly_as_plain_json() -> None:
    from simulators.fhir.http import dump_bundle
    from simulators.fhir.outcome import dump_json

    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        await _population(client)
        for path, params in (("/Patient", {}), ("/Observation", {"_count": "2"}), ("/Patient", {"_elements": "id"})):
            response = await client.get(path, params=params)
            assert response.content == dump_json(response.json())
        odd = {"resourceType": "Bundle", "entry": [{"fullUrl": 'u"\\é', "resource": {"a": 1}, "search": "x"},
                                                   {"resource": {"b": 2}, "search": {"mode": "include"}},
                                                   {"response": {"status": "200"}}, {"fullUrl": "x"}]}
        assert dump_bundle(odd, dump_json) == dump_json(odd)

    run(scenario)
