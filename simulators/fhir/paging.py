"""Paged result Bundles (searchset and history) with `self`, `next` and `previous` links.

Page size: `_count` (default and maximum from the personality). `_count=0` asks for the total only
(FHIR R4 §3.1.1.5.5). A non-integer or negative `_count`, or one above the maximum on a vendor that
refuses rather than clamps (`count_over_max="error"`), is a `SearchError` (400).

Position, per personality `paging`:
- `offset`: `_offset=<n>` in the links (Medplum's style), re-evaluated on every page;
- `cursor`: an opaque `_page=<token>` drawn from the rng, standing for the query and the offset; it
  expires `cursor_ttl_s` after it was issued, on the injected clock (Epic's "Session ID for cached
  search results has expired", 4113, vendors.md §1), and then answers 410 `expired`.
Either way the page is computed when it is fetched, so a resource created meanwhile can shift what a
later page holds, as on Cerner ("the same id may appear on later pages", vendors.md §2).

Links are absolute, built from the request's own base URL (`simulators.fhir.http.fhir_base`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from integrations.clock import Clock
from simulators.fhir.personality import FhirPersonality
from simulators.fhir.search import SearchError
from simulators.fhir.store import Version

JsonObject = dict[str, Any]
Items = list[tuple[str, str]]
PAGING_PARAMS = frozenset({"_count", "_offset", "_page"})
#: Most cursors kept at once; the oldest go first beyond it.
MAX_CURSORS = 10_000
#: The `search` member of every match entry (one shared object: `http.dump_bundle` recognises it).
SEARCH_MATCH: JsonObject = {"mode": "match"}
#: What `quote_plus` leaves alone (`urlencode`'s default quoting).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


class CursorExpired(SearchError):
    """A `_page` token that is unknown or past its lifetime (410)."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    items: Items  # the query without the paging parameters
    count: int
    offset: int


@dataclass(frozen=True, slots=True)
class _Cursor:
    items: Items
    count: int
    offset: int
    expires_at: float


def _non_negative(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or len(text) > 9:
        raise SearchError(f"{name} must be a non-negative integer")
    return int(text)


class Pager:
    """Reads the page a request asks for and writes the links to the neighbouring pages."""

    def __init__(self, personality: FhirPersonality, clock: Clock, rng: random.Random) -> None:
        self._personality = personality
        self._clock = clock
        self._rng = rng
        self._cursors: dict[str, _Cursor] = {}

    def request(self, items: Sequence[tuple[str, str]]) -> PageRequest:
        personality = self._personality
        values = dict(reversed(list(items)))  # the first occurrence of a paging parameter wins
        if "_page" in values:
            cursor = self._cursors.get(values["_page"])
            if cursor is None or self._clock.monotonic() >= cursor.expires_at:
                self._cursors.pop(values["_page"], None)
                raise CursorExpired("Search session expired or unknown; run the search again")
            return PageRequest(cursor.items, cursor.count, cursor.offset)
        count = personality.default_count
        if "_count" in values:
            count = _non_negative("_count", values["_count"])
            if count > personality.max_count:
                if personality.count_over_max == "error":
                    raise SearchError(f"_count must not exceed {personality.max_count}")
                count = personality.max_count
        offset = _non_negative("_offset", values["_offset"]) if "_offset" in values else 0
        return PageRequest([(k, v) for k, v in items if k not in PAGING_PARAMS], count, offset)

    def links(self, url: str, used: Items, page: PageRequest, total: int) -> list[JsonObject]:
        """self, next and previous for the page `page` of `total` results; `url` has no query."""
        links = [{"relation": "self", "url": self._url(url, used, page.count, page.offset, cursor=False)}]
        if page.count and page.offset + page.count < total:
            links.append({"relation": "next", "url": self._url(url, used, page.count, page.offset + page.count)})
        if page.count and page.offset > 0:
            links.append({"relation": "previous",
                          "url": self._url(url, used, page.count, max(0, page.offset - page.count))})
        return links

    def _url(self, url: str, used: Items, count: int, offset: int, *, cursor: bool = True) -> str:
        if cursor and self._personality.paging == "cursor":
            return f"{url}?{urlencode([('_page', self._new_cursor(used, count, offset))])}"
        params = [*used, ("_count", str(count))]
        if offset:
            params.append(("_offset", str(offset)))
        return f"{url}?{_query(params)}"

    def _new_cursor(self, items: Items, count: int, offset: int) -> str:
        now = self._clock.monotonic()
        if len(self._cursors) >= MAX_CURSORS:
            self._cursors = {k: c for k, c in self._cursors.items() if c.expires_at > now}
            while len(self._cursors) >= MAX_CURSORS:
                del self._cursors[next(iter(self._cursors))]
        token = f"{self._rng.getrandbits(128):032x}"
        self._cursors[token] = _Cursor(list(items), count, offset, now + self._personality.cursor_ttl_s)
        return token


def _query(params: Items) -> str:
    """`urlencode(params)`, without its per-character quoting when nothing needs quoting (the usual page link)."""
    if all(_UNQUOTED.fullmatch(key) and _UNQUOTED.fullmatch(value) for key, value in params):
        return "&".join(f"{key}={value}" for key, value in params)
    return urlencode(params)


def searchset(entries: Sequence[Mapping[str, Any]], *, base: str, total: int | None,
              links: list[JsonObject], included: Sequence[Mapping[str, Any]] = (),
              outcome: Mapping[str, Any] | None = None) -> JsonObject:
    """A searchset Bundle; `entries` are resources (already shaped), `included` go in with mode include,
    and `outcome` (an OperationOutcome of warnings), if any, last with mode outcome (FHIR R4 §3.1.1.4.8)."""
    bundle: JsonObject = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    listed = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": SEARCH_MATCH}
              for r in entries]
    listed += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
               for r in included]
    if outcome is not None:
        listed.append({"resource": outcome, "search": {"mode": "outcome"}})
    if listed:  # FHIR JSON has no empty arrays
        bundle["entry"] = listed
    return bundle


def history_bundle(versions: Sequence[Version], *, base: str, total: int, links: list[JsonObject]) -> JsonObject:
    """A history Bundle: each version with its request (method, url) and response (status, etag)."""
    entries: list[JsonObject] = []
    for version in versions:
        url = f"{version.resource_type}/{version.resource_id}"
        entry: JsonObject = {"fullUrl": f"{base}/{url}"}
        if version.resource is not None:
            entry["resource"] = version.resource
        entry["request"] = {"method": version.method, "url": url if version.method != "POST" else
                            version.resource_type}
        entry["response"] = {"status": "410" if version.deleted else ("201" if version.method == "POST" else "200"),
                             "etag": f'W/"{version.version_id}"', "lastModified": version.last_updated}
        entries.append(entry)
    bundle: JsonObject = {"resourceType": "Bundle", "type": "history", "total": total, "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle
