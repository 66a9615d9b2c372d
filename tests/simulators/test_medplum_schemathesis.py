"""Schemathesis against Medplum's own OpenAPI schema, in process and in virtual time: no 5xx, no schema violation.

FHIR calls carry a valid bearer token and admin calls the admin token (see `tests/openapi_fuzz.py`).
`POST /admin/reset` is left out: a generated `reseed` of thousands of patients is slow, not wrong (it
is covered by the admin tests).
"""

from __future__ import annotations

from harness.clock import run_virtual
from simulators.medplum import MedplumSimulator
from tests.openapi_fuzz import fuzz_openapi
from tests.simulators.support import ADMIN_TOKEN, CLIENT_ID, make_medplum

MAX_EXAMPLES = 6  # ~530 requests in ~4 s (a create and an update per resource type); 15 found nothing more


async def _prepare() -> MedplumSimulator:
    sim = make_medplum()
    sim.seed_patients(2)
    return sim


def test_medplum_openapi_schema_finds_no_server_errors() -> None:
    sim = run_virtual(_prepare)

    def token_for(path: str) -> str:
        return ADMIN_TOKEN if path.startswith("/admin") else sim.tokens.issue(CLIENT_ID, ["system/*.cruds"]).value

    result = fuzz_openapi(sim.app, sim.chaos, token_for, max_examples=MAX_EXAMPLES,
                          skipped={("POST", "/admin/reset")})
    assert result.operations >= 20  # the FHIR core, OAuth, healthcheck and the admin API are all in the schema
    assert sum(n for status, n in result.statuses.items() if status < 300) > result.cases // 10, result.statuses
    assert not result.failures, result.failures[:5]  # no 5xx, and every answer as the document declares it
    assert result.write_share > 0.9, result.summary()  # writes carry declared bodies: few refused unread
    assert result.write_statuses[201] > 20, result.summary()  # generated resources pass R4B validation
