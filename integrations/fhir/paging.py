"""Safe paging through a searchset: which `next` links may be followed, and what the pages add up to.

A Bundle's `next` link is followed only if it has the base URL's scheme, host and port (default
ports made explicit, so `https://h/x` and `https://h:443/x` are one origin) and no userinfo: the auth
flow attaches the bearer token to every request the connector sends, so a link to another origin
(a hostile or misconfigured server, reference/vendors.md "Known problems": unreachable localhost
links, http/https switches, `:443:443`) is a `MalformedResponse`, never a request. A relative link
is resolved against the base URL. A link that repeats a page already read is a loop, also refused.

`Pages` counts resources whose (type, id) already appeared on an earlier page (`duplicates`) but
keeps every entry as the server sent it: a server whose data changed between pages (Cerner's
"the same id may appear on later pages", vendors.md §2) or a repeated `_include` shows up there,
and the caller decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from integrations.fhir.errors import MalformedResponse
from integrations.fhir.models import FhirResource, SearchResults

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    return url.scheme, url.host, _port(url)


class Pages:
    """The pages of one search as they arrive, and the `next` links they give."""

    def __init__(self, base_url: httpx.URL, *, vendor: str) -> None:
        self._base_url = base_url
        self._origin = origin(base_url)
        self._vendor = vendor
        self._followed: set[str] = set()
        self._seen: set[tuple[str, str]] = set()
        self.resources: list[FhirResource] = []
        self.pages = 0
        self.duplicates = 0

    def add(self, resources: Sequence[FhirResource]) -> None:
        self.pages += 1
        for item in resources:
            key = (item.resource_type, item.id)
            if key in self._seen:
                self.duplicates += 1
            self._seen.add(key)
            self.resources.append(item)

    def next_url(self, link: str) -> httpx.URL:
        """The absolute URL of a `next` link, if it is safe to send the bearer token there and not a loop."""
        try:
            url = self._base_url.join(link)
        except httpx.InvalidURL:
            raise MalformedResponse("the searchset's next link is not a valid URL", vendor=self._vendor) from None
        if origin(url) != self._origin or url.userinfo:
            raise MalformedResponse(
                f"refusing to follow a next link to another origin ({url.scheme}://{url.host}:{_port(url)}); "
                f"it would carry the access token", vendor=self._vendor)
        if str(url) in self._followed:
            raise MalformedResponse("the searchset's next link repeats a page already read", vendor=self._vendor)
        self._followed.add(str(url))
        return url

    def results(self, *, complete: bool) -> SearchResults:
        return SearchResults(resources=tuple(self.resources), pages=self.pages, complete=complete,
                             duplicates=self.duplicates)


def _port(url: httpx.URL) -> int | None:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
