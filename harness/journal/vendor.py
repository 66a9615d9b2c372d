"""What the vendors saw: every request a simulator received, from its request journal. One `vendor.request`
per request a simulator's request journal recorded (`simulators.admin.journal`), read through its admin API
at the end of a run (`harness.vendor_requests`).

The judge the built-in integration and an external system under test share (DESIGN.md "The system under
test is a seam"): checks computed from these events (`harness.checks.vendor_side`) hold any integration to
the same standard. An event carries the URL path only (never the query string), the client id the simulator
authenticated (a public identifier, never a secret or token), the resource type and id read from the path,
the `Retry-After` the response asked for and, for a JSON-object write, its top-level field names (never a value).

`t` is when the request arrived, in scenario time (the simulator stamps it on the lab's clock, to the
millisecond). Events are ordered by arrival, then vendor (in the scenario's order), then the simulator's
sequence number: the same virtual run gives the same events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.journal.base import Event, stamp
from simulators.fhir.personality import DEFAULT_RESOURCE_TYPES

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TOKEN_SEGMENTS = frozenset({"token", "gettoken"})
_RESOURCE_TYPES = frozenset(DEFAULT_RESOURCE_TYPES)


class VendorRequestEvent(Event):
    """A request a vendor (simulator) received, as it saw it (runbook 000 §2, 002 §2.1: what the vendor-side
    checks judge). `status` None: the connection was dropped before a response."""

    kind: Literal["vendor.request"] = "vendor.request"
    vendor: str  # the simulator that received it
    seq: int  # the simulator's own sequence number
    method: str
    path: str  # the URL path only, never the query string
    status: int | None  # None: the connection was dropped before a response
    outcome: str  # response | dropped | truncated | error
    client: str | None  # the client id the simulator authenticated (never a secret); None: unauthenticated
    token_request: bool  # a POST to a token endpoint (`.../token`, Unity `GetToken`)
    resource_type: str | None  # the FHIR resource type the path names
    resource_id: str | None  # the resource id the path names
    latency_ms: float  # until the response's last byte (or the drop), on the lab's clock
    faults: tuple[str, ...]  # the chaos fault kinds the simulator applied to it
    retry_after_s: float | None  # the response's Retry-After, in seconds
    fields: tuple[str, ...]  # a JSON-object write's top-level field names, sorted (never a value)


class SimulatorJournalEntry(BaseModel):
    """One entry of a simulator's `GET /admin/requests` answer (`JournalEntry.to_json`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    seq: int
    at: datetime
    method: str
    path: str
    client: str | None
    status: int | None
    latency_ms: float
    faults: tuple[str, ...] = ()
    outcome: str = "response"
    retry_after_s: float | None = None
    fields: tuple[str, ...] = ()


def resource_of(path: str) -> tuple[str | None, str | None]:
    """The FHIR resource type and id a request path names (`/fhir/R4/Patient/123/_history/2` -> Patient, 123),
    the last resource type in the path winning; (None, None) for a path naming none."""
    segments = [s for s in path.split("/") if s]
    for i in range(len(segments) - 1, -1, -1):
        if segments[i] in _RESOURCE_TYPES:
            after = segments[i + 1] if i + 1 < len(segments) else None
            rid = after if after is not None and after[0] not in "$_" and _FHIR_ID.match(after) else None
            return segments[i], rid
    return None, None


def is_token_request(method: str, path: str) -> bool:
    """A token request: a POST to a path ending in `token` (OAuth token endpoints) or Unity's `GetToken`."""
    last = path.rstrip("/").rsplit("/", 1)[-1].lower()
    return method.upper() == "POST" and last in _TOKEN_SEGMENTS


def vendor_request_events(vendor: str, entries: Iterable[SimulatorJournalEntry], *, now: datetime,
                          now_t: float) -> list[VendorRequestEvent]:
    """`entries` of `vendor` as journal events; `now` (the lab clock's wall time) is scenario time `now_t`."""
    events = []
    for entry in entries:
        resource_type, resource_id = resource_of(entry.path)
        events.append(VendorRequestEvent(
            t=stamp(now_t - (now - entry.at).total_seconds()), vendor=vendor, seq=entry.seq, method=entry.method,
            path=entry.path.split("?", 1)[0], status=entry.status, outcome=entry.outcome, client=entry.client,
            token_request=is_token_request(entry.method, entry.path), resource_type=resource_type,
            resource_id=resource_id, latency_ms=entry.latency_ms, faults=entry.faults,
            retry_after_s=entry.retry_after_s, fields=entry.fields))
    return events


def in_arrival_order(per_vendor: Sequence[Sequence[VendorRequestEvent]]) -> list[VendorRequestEvent]:
    """Every vendor's events, by arrival time, then vendor (in the order given), then sequence number."""
    keyed = [(e.t, rank, e.seq, e) for rank, events in enumerate(per_vendor) for e in events]
    return [e for _, _, _, e in sorted(keyed, key=lambda k: (k[0], k[1], k[2]))]
