"""Schemathesis against Medplum's own OpenAPI schema, in process and in virtual time: no 5xx.

The schema comes from the simulator's `/openapi.json` (fetched through `VirtualTransport`), and every
generated case is sent through the same in-process transport, so no socket and no thread is involved
(schemathesis's own ASGI client runs the app in a thread on a real loop). Each operation gets at most
`MAX_EXAMPLES` examples, derandomized, so the run is bounded and repeatable. FHIR calls carry a valid bearer token
and admin calls the admin token, so generated requests get past authentication.

Chaos faults the generated admin calls switch on are cleared after each case: a 5xx the chaos layer was
asked to inject is not a bug. `POST /admin/reset` is left out: a generated `reseed` of thousands of
patients is slow, not wrong (it is covered by the admin tests).
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from harness.clock import run_virtual
from simulators.medplum import MedplumSimulator
from simulators.transport import VirtualTransport
from tests.simulators.support import ADMIN_TOKEN, BASE_URL, CLIENT_ID, client_for, make_medplum

MAX_EXAMPLES = 10  # ~1,000 requests in ~4 s; 20 doubles the time and found nothing more
SKIPPED = {("POST", "/admin/reset")}


async def _prepare() -> tuple[MedplumSimulator, dict[str, Any]]:
    sim = make_medplum()
    sim.seed_patients(2)
    async with client_for(sim) as client:
        raw = (await client.get("/openapi.json")).json()
    return sim, raw


async def _send(sim: MedplumSimulator, kwargs: dict[str, Any]) -> httpx.Response:
    path = httpx.URL(kwargs["url"]).path
    token = ADMIN_TOKEN if path.startswith("/admin") else sim.tokens.issue(CLIENT_ID, ["system/*.cruds"]).value
    headers = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {token}"}
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif "data" in kwargs:
        body["content" if isinstance(kwargs["data"], bytes | str) else "data"] = kwargs["data"]
    async with httpx.AsyncClient(transport=VirtualTransport(sim.app)) as client:
        return await client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                                    **body)


def test_medplum_openapi_schema_finds_no_server_errors() -> None:
    sim, raw = run_virtual(_prepare)
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url=BASE_URL)
            response = run_virtual(lambda: _send(sim, kwargs))
            injected = bool(sim.chaos.faults)
            sim.chaos.reset()
            if response.status_code >= 500 and not injected:
                failures.append(f"{kwargs['method']} {kwargs['url']} -> {response.status_code}: {response.text[:200]}")

        check()
    assert operations >= 20  # the FHIR core, OAuth, healthcheck and the admin API are all in the schema
    assert not failures, failures[:5]
