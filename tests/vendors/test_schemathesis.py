"""Schemathesis against the Epic, Cerner and Allscripts simulators' own OpenAPI schemas: no 5xx, no schema violation.

Each simulator documents its FHIR base, token endpoint and admin API in `/openapi.json`; every operation
gets a bounded number of derandomized examples, sent in process (see `tests/openapi_fuzz.py`). FHIR calls
carry a token with the vendor's broadest system scopes, admin calls the admin token. Every answer goes
through schemathesis's response checks, and FHIR writes carry the bodies the documents declare
(`simulators.fhir.openapi_doc`), so they reach their handlers and create resources. `POST /admin/reset`
is left out as for Medplum: a generated `reseed` of thousands of patients is slow, not wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.clock import VirtualClock, run_virtual
from tests.openapi_fuzz import fuzz_openapi
from tests.vendors.keys import CLIENT_ID
from tests.vendors.support import ADMIN_TOKEN, make_allscripts, make_cerner, make_epic

MAX_EXAMPLES = 4  # 360-580 requests per vendor in 3-6 s (a create and an update per resource type are documented)

BUILDERS: dict[str, tuple[Callable[[VirtualClock], Any], tuple[str, ...]]] = {
    "epic": (make_epic, ("system/*.cruds",)),
    "cerner": (make_cerner, ("system/*.read", "system/*.write")),
    "allscripts": (make_allscripts, ("system/*.read",)),
}


@pytest.mark.parametrize("vendor", sorted(BUILDERS))
def test_openapi_schema_finds_no_server_errors(vendor: str) -> None:
    build, scopes = BUILDERS[vendor]

    async def prepare() -> Any:
        sim = build(VirtualClock())
        sim.seed_patients(2)
        return sim

    sim = run_virtual(prepare)

    def token_for(path: str) -> str:
        return ADMIN_TOKEN if path.startswith("/admin") else sim.tokens.issue(CLIENT_ID, scopes).value

    result = fuzz_openapi(sim.app, sim.chaos, token_for, max_examples=MAX_EXAMPLES,
                          skipped={("POST", "/admin/reset")})
    assert result.operations >= 15, result.operations  # FHIR core, token endpoint and admin API are documented
    assert sum(n for status, n in result.statuses.items() if status < 300) > result.cases // 10, result.statuses
    assert not result.failures, result.failures[:5]  # no 5xx, and every answer as the document declares it
    assert result.write_share > 0.9, result.summary()  # writes carry declared bodies: few refused unread
    if vendor != "allscripts":  # Allscripts' FHIR API is read-only
        assert result.write_statuses[201] > 20, result.summary()  # generated resources pass R4B validation
