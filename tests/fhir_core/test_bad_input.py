"""Bad input gets a 4xx OperationOutcome, never a 5xx: bodies, types, sizes, content types, patches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.fhir import FhirPersonality
from simulators.fhir.patch import PatchError, apply_patch
from tests.fhir_core.support import Core, outcome_of, patient, run

SMALL = FhirPersonality(name="small-bodies", max_body_bytes=2048)
VENDOR_422 = FhirPersonality(name="422", invalid_resource_status=422)
JSON = {"Content-Type": "application/fhir+json"}


@pytest.mark.parametrize(("method", "path", "content", "headers", "status"), [
    ("POST", "/Patient", b"{not json", JSON, 400),
    ("POST", "/Patient", b'{"resourceType": "Patient", "x": NaN}', JSON, 400),
    ("POST", "/Patient", b"\xff\xfe\x00", JSON, 400),
    ("POST", "/Patient", b"", JSON, 400),
    ("POST", "/Patient", b"[1, 2]", JSON, 400),
    ("POST", "/Patient", b"42", JSON, 400),
    ("POST", "/Patient", b"[" * 1000 + b"]" * 1000, JSON, 400),
    ("POST", "/Patient", b'{"a":' * 100 + b"1" + b"}" * 100, JSON, 400),
    ("POST", "/Patient", b'{"resourceType": "Observation", "status": "final"}', JSON, 400),
    ("POST", "/Patient", b'{"resourceType": "Patient", "birthDate": "yesterday"}', JSON, 400),
    ("POST", "/Patient", b'{"resourceType": "Patient", "favouriteColour": "blue"}', JSON, 400),
    ("POST", "/Spaceship", b'{"resourceType": "Spaceship"}', JSON, 404),
    ("POST", "/Patient", b'{"resourceType": "Patient"}', {"Content-Type": "text/plain"}, 415),
    ("POST", "/Patient", b'<Patient xmlns="http://hl7.org/fhir"/>', {"Content-Type": "application/fhir+xml"}, 415),
    ("POST", "/Patient", b'{"resourceType": "Patient"}', {}, 415),
    ("POST", "/Patient", b'{"resourceType": "Patient", "text": "' + b"x" * 4000 + b'"}', JSON, 413),
    ("PUT", "/Patient/p1", b'{"resourceType": "Patient", "id": "p1", "text": "' + b"x" * 4000 + b'"}', JSON, 413),
    ("PATCH", "/Patient/p1", b'[{"op": "replace", "path": "/gender", "value": "male"}]', JSON, 415),
    ("PATCH", "/Patient/p1", b'{"op": "replace"}', {"Content-Type": "application/json-patch+json"}, 400),
    ("PATCH", "/Patient/p1", b'[{"op": "jump", "path": "/gender"}]', {"Content-Type": "application/json-patch+json"},
     400),
    ("PATCH", "/Patient/p1", b'[{"op": "replace", "path": "/id", "value": "p2"}]',
     {"Content-Type": "application/json-patch+json"}, 400),
    ("PATCH", "/Patient/p1", b'[{"op": "add", "path": "/birthDate", "value": "soon"}]',
     {"Content-Type": "application/json-patch+json"}, 400),
    ("PATCH", "/Patient/none", b"[]", {"Content-Type": "application/json-patch+json"}, 404),
    ("POST", "/", b'{"resourceType": "Patient"}', JSON, 400),
    ("GET", "/Patient/p1/_history/x/y", b"", {}, 404),
    ("DELETE", "/metadata", b"", {}, 404),
])
def test_bad_requests_are_4xx_operation_outcomes(method: str, path: str, content: bytes, headers: dict[str, str],
                                                 status: int) -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> httpx.Response:
        core.store.upsert(patient(id="p1"))
        return await client.request(method, path, content=content, headers=headers)

    response = run(scenario, SMALL)
    outcome = outcome_of(response, status)
    assert "blue" not in response.text  # messages name fields and rules, never the values sent
    assert outcome["issue"][0]["severity"] == "error"


def test_a_lying_content_length_cannot_make_the_server_buffer_more() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> httpx.Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1024

        return await client.post("/Patient", content=chunks(), headers=JSON)

    outcome_of(run(scenario, SMALL), 413)


def test_invalid_resources_are_422_where_the_vendor_says_so_and_store_nothing() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        response = await client.post("/Observation", json={"resourceType": "Observation", "status": "final"})
        outcome = outcome_of(response, 422)
        assert "Observation.code" in outcome["issue"][0]["expression"]
        assert core.store.count("Observation") == 0

    run(scenario, VENDOR_422)


def test_json_patch_operations() -> None:
    doc = {"resourceType": "Patient", "id": "p", "name": [{"given": ["A"]}], "a~b": 1, "c/d": 2}
    patched = apply_patch(doc, [
        {"op": "add", "path": "/name/0/given/-", "value": "B"},
        {"op": "add", "path": "/name/0/given/0", "value": "Z"},
        {"op": "replace", "path": "/a~0b", "value": 3},
        {"op": "remove", "path": "/c~1d"},
        {"op": "copy", "from": "/name/0", "path": "/name/1"},
        {"op": "move", "from": "/name/1/given", "path": "/alias"},
        {"op": "test", "path": "/alias", "value": ["Z", "A", "B"]},
    ])
    assert patched == {"resourceType": "Patient", "id": "p", "name": [{"given": ["Z", "A", "B"]}, {}], "a~b": 3,
                       "alias": ["Z", "A", "B"]}
    assert doc["name"] == [{"given": ["A"]}]  # the original is untouched
    for bad in ([{"op": "test", "path": "/id", "value": "q"}], [{"op": "remove", "path": "/nope"}],
                [{"op": "add", "path": "/name/5", "value": {}}], [{"op": "add", "path": "name", "value": 1}],
                [{"op": "add", "path": "/name/01", "value": 1}], [{"op": "move", "from": "/name", "path": "/name/0"}],
                [{"op": "replace", "path": "/id"}], ["add"], {"op": "add"}, [{"op": "remove", "path": ""}]):
        with pytest.raises(PatchError):
            apply_patch(doc, bad)


def test_patch_through_the_api_bumps_the_version_and_checks_if_match() -> None:
    async def scenario(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient())).json()["id"]
        headers = {"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'}
        ops = b'[{"op": "replace", "path": "/gender", "value": "male"}]'
        patched = await client.patch(f"/Patient/{pid}", content=ops, headers=headers)
        assert patched.status_code == 200
        assert patched.headers["etag"] == 'W/"2"'
        assert patched.json()["gender"] == "male"
        outcome_of(await client.patch(f"/Patient/{pid}", content=ops, headers=headers), 412)

    run(scenario)

    async def no_patch(core: Core, client: httpx.AsyncClient) -> None:
        pid = (await client.post("/Patient", json=patient())).json()["id"]
        outcome_of(await client.patch(f"/Patient/{pid}", content=b"[]",
                                      headers={"Content-Type": "application/json-patch+json"}), 405)

    run(no_patch, FhirPersonality(name="no-patch", supports_patch=False))
