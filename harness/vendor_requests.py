"""Read what the vendors saw: every simulator's request journal, through its admin API, as `vendor.request`
journal events (`harness.journal.vendor`), at the end of a run and before the checks.

The admin client is the one the fault driver uses (`lab.vendor(name).admin`, bearer admin token); the
journal is paged with its `after` cursor. An event's `t` is when the request arrived; in real mode its `wall`
is, as every event's, when it was journaled (after the drain).

A simulator's journal keeps its newest 10,000 entries (`simulators.admin.journal.DEFAULT_CAPACITY`): past
that, the oldest are gone and the events begin later (not yet journaled as such: a follow-up of issue 15).
A journal the lab cannot read (an HTTP error, an answer of the wrong shape) is `VendorJournalUnreadable`, a
`LabError`: the run is inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
from pydantic import BaseModel, ConfigDict

from harness.errors import LabError
from harness.journal import Journal
from harness.journal.vendor import SimulatorJournalEntry, VendorRequestEvent, in_arrival_order, vendor_request_events
from integrations.clock import Clock

PAGE = 1_000  # small pages: in real mode the simulators share the lab's event loop, whose lag the lab measures


class VendorJournalUnreadable(LabError):
    """The lab could not read a simulator's request journal: the vendor-side checks cannot judge the run."""


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    entries: tuple[SimulatorJournalEntry, ...]
    count: int


async def read_entries(admin: httpx.AsyncClient) -> list[SimulatorJournalEntry]:
    """Every entry of a simulator's request journal, oldest first."""
    entries: list[SimulatorJournalEntry] = []
    after = 0
    while True:
        response = await admin.get("/admin/requests", params={"after": after, "limit": PAGE})
        response.raise_for_status()
        page = _Page.model_validate_json(response.content)
        entries.extend(page.entries)
        if page.count < PAGE or not page.entries:
            return entries
        after = page.entries[-1].seq


async def vendor_requests(admins: Mapping[str, httpx.AsyncClient], clock: Clock,
                          journal: Journal) -> list[VendorRequestEvent]:
    """Every vendor's requests as journal events, in arrival order (vendors in the order of `admins`)."""
    per_vendor: list[Sequence[VendorRequestEvent]] = []
    for vendor, admin in admins.items():
        try:
            entries = await read_entries(admin)
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: pydantic's, an answer of the wrong shape
            raise VendorJournalUnreadable(f"could not read {vendor}'s request journal: "
                                          f"{exc.__class__.__name__}") from exc
        per_vendor.append(vendor_request_events(vendor, entries, now=clock.now(), now_t=journal.elapsed()))
    return in_arrival_order(per_vendor)
