"""A token that expires in the middle of a paged search: every page arrives once, and no 401 reaches
the caller. Against each vendor's simulator in process, with the client the lab builds
(`harness.vendors`); the admin API forces every token to expire after the second page
(`simulators/admin/tokens.py`, `POST /admin/tokens/expire`)."""

from __future__ import annotations

import httpx
import pytest

from harness.clock import run_virtual
from harness.vendors import VENDORS
from integrations.events import RequestCompleted, TokenIssued
from integrations.fhir import SearchResults
from tests.integrations.pipeline.lab import VendorLab, vendor_lab

PATIENTS = 7
PAGE = 2
PAGES = -(-PATIENTS // PAGE)


async def _search_with_expiry_after_page(lab: VendorLab, page: int) -> tuple[SearchResults, int]:
    fhir = VENDORS[lab.name].fhir_path
    served = 0
    expired = 0

    async def after(request: httpx.Request, response: httpx.Response) -> None:
        nonlocal served, expired
        if request.url.path.startswith(fhir) and response.status_code == 200:
            served += 1
            if served == page:
                expired = await lab.expire_tokens()

    lab.transport.after = after
    results = await lab.client.connector.search_all("Patient", {"_count": str(PAGE)})
    return results, expired


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_token_expiry_mid_search_loses_no_page_and_no_401_reaches_the_caller(name: str) -> None:
    async def main() -> tuple[SearchResults, int, VendorLab]:
        async with vendor_lab(name, patients=PATIENTS) as lab:
            results, expired = await _search_with_expiry_after_page(lab, 2)
            return results, expired, lab

    results, expired, lab = run_virtual(main)
    assert expired == 1  # the one token the client held was forced to expire after page 2
    assert [r.id for r in results.resources] == lab.patients  # every patient, once, in order
    assert (results.pages, results.complete, results.duplicates) == (PAGES, True, 0)

    fhir = VENDORS[name].fhir_path
    answers = [(status, path.startswith(fhir)) for _, path, status in lab.transport.seen]
    assert answers.count((401, True)) == 1  # page 3's first send ...
    after_401 = answers[answers.index((401, True)) + 1:]
    assert after_401[:2] == [(200, False), (200, True)]  # ... then one token request and the resend
    assert answers.count((200, True)) == PAGES  # no page was fetched twice
    completed = [e for e in lab.events if isinstance(e, RequestCompleted)]
    assert [(e.status, e.error, e.attempt) for e in completed] == [(200, None, 1)] * PAGES
    issued = [e for e in lab.events if isinstance(e, TokenIssued)]
    assert [(e.refresh, e.reason) for e in issued] == [(False, "initial"), (True, "rejected")]
