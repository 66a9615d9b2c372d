"""How many fuzzed writes reach their handler, per app: `.venv/bin/python -m tests.simulators.fuzz_write_share`.

Runs the same schemathesis fuzzing as the tests (`tests/openapi_fuzz.py`, the same builders, tokens and
`max_examples`) over the four simulators and the service, records every answer, and prints per app the
share of writes (POST/PUT/PATCH/DELETE) that reached their handler, i.e. were not refused while the request
was read (`openapi_fuzz.parse_rejected`: 413, 415, and the 400/422 of a body that could not be read), for
all writes and for the writes that carry a resource (FHIR and ingress POST/PUT/PATCH), with their 415s and
2xx. Not a test (no `test_` prefix): a measurement for the issue's closing note, a few seconds an app.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import tests.integrations.service.test_schemathesis as service_fuzz
import tests.openapi_fuzz as fuzz
from harness.clock import VirtualClock, run_virtual
from tests.simulators.support import ADMIN_TOKEN as MEDPLUM_ADMIN
from tests.simulators.support import CLIENT_ID as MEDPLUM_CLIENT
from tests.simulators.support import make_medplum
from tests.vendors.keys import CLIENT_ID
from tests.vendors.support import ADMIN_TOKEN, make_allscripts, make_cerner, make_epic

RESOURCE_WRITE = re.compile(r"/(api/FHIR/R4|r4/[^/]+|FHIR|fhir/R4|fhir/inbound)(/|$)")
Record = tuple[str, str, int, bool]  # method, path, status, refused while parsing


def _recording(records: list[Record]) -> None:
    send = fuzz._send

    async def recorded(transport: httpx.AsyncBaseTransport, kwargs: dict[str, Any],
                       headers_for: fuzz.HeadersFor) -> httpx.Response:
        response = await send(transport, kwargs, headers_for)
        records.append((kwargs["method"].upper(), httpx.URL(kwargs["url"]).path, response.status_code,
                        fuzz.parse_rejected(response.status_code, response.text)))
        return response

    fuzz._send = recorded  # type: ignore[assignment]


def _share(records: list[Record]) -> str:
    reached = sum(not refused for *_, refused in records)
    return f"{reached}/{len(records)} = {reached / max(1, len(records)):.0%}"


def _report(name: str, seconds: float, records: list[Record]) -> None:
    writes = [r for r in records if r[0] in fuzz.WRITES]
    resource = [r for r in writes if r[0] in ("POST", "PUT", "PATCH") and RESOURCE_WRITE.search(r[1])
                and not r[1].endswith("_search")]
    print(f"{name:10s} {seconds:5.1f} s  writes reaching the handler {_share(writes):>16s}  |  resource writes "
          f"{_share(resource):>16s}, 415: {sum(r[2] == 415 for r in resource)}, "
          f"2xx: {sum(200 <= r[2] < 300 for r in resource)}")
    records.clear()


def main() -> None:
    records: list[Record] = []
    _recording(records)
    vendors: dict[str, tuple[Callable[[VirtualClock], Any], tuple[str, ...], str, str]] = {
        "epic": (make_epic, ("system/*.cruds",), ADMIN_TOKEN, CLIENT_ID),
        "cerner": (make_cerner, ("system/*.read", "system/*.write"), ADMIN_TOKEN, CLIENT_ID),
        "allscripts": (make_allscripts, ("system/*.read",), ADMIN_TOKEN, CLIENT_ID),
        "medplum": (lambda clock: make_medplum(), ("system/*.cruds",), MEDPLUM_ADMIN, MEDPLUM_CLIENT),
    }
    for name, (build, scopes, admin, client) in vendors.items():
        async def prepare(build: Callable[[VirtualClock], Any] = build) -> Any:
            sim = build(VirtualClock())
            sim.seed_patients(2)
            return sim

        sim = run_virtual(prepare)

        def token_for(path: str, sim: Any = sim, admin: str = admin, client: str = client,
                      scopes: tuple[str, ...] = scopes) -> str:
            return admin if path.startswith("/admin") else str(sim.tokens.issue(client, scopes).value)

        started = time.perf_counter()  # real-time: a measurement printed for people, not part of any run
        fuzz.fuzz_openapi(sim.app, sim.chaos, token_for, max_examples=6, skipped={("POST", "/admin/reset")})
        _report(name, time.perf_counter() - started, records)
    started = time.perf_counter()  # real-time: as above
    try:
        with tempfile.TemporaryDirectory() as tmp:
            service_fuzz.test_service_openapi_schema_finds_no_server_errors_or_violations(Path(tmp))
    except AssertionError as exc:  # the numbers are the point here; the test says what failed
        print(f"service: the fuzz test failed: {str(exc)[:200]}")
    _report("service", time.perf_counter() - started, records)


if __name__ == "__main__":
    main()
