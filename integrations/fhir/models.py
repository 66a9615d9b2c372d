"""What the connector returns: typed wrappers around FHIR JSON.

A resource body stays JSON (`JsonObject`): the connector moves resources, it does not model every
FHIR type. What callers branch on (type, id, version, ETag, paging links) is lifted into fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"


@dataclass(frozen=True, slots=True)
class FhirResource:
    """One resource as the server returned it.

    `version_id` is `meta.versionId` (or, failing that, the ETag's version); `etag` is the ETag
    header of a read/create/update (None for a search entry, which has no headers of its own).
    """

    resource_type: str
    id: str
    version_id: str | None
    etag: str | None
    body: JsonObject

    def __repr__(self) -> str:  # the body may be PHI: never in a repr
        return (f"FhirResource(resource_type={self.resource_type!r}, id={self.id!r}, "
                f"version_id={self.version_id!r})")


@dataclass(frozen=True, slots=True)
class BundlePage:
    """One page of a searchset Bundle.

    `resources` are the entries the search matched or included; entries with `search.mode`
    "outcome" (an OperationOutcome warning, e.g. Epic's 4101 "no results") are in `outcomes`.
    `next_url` is the Bundle's `next` link as given (not yet checked: see `FhirConnector.search_all`).
    """

    resources: tuple[FhirResource, ...]
    outcomes: tuple[JsonObject, ...]
    total: int | None
    next_url: str | None

    def __repr__(self) -> str:
        return (f"BundlePage(resources={len(self.resources)}, total={self.total!r}, "
                f"has_next={self.next_url is not None})")


@dataclass(frozen=True, slots=True)
class SearchResults:
    """All pages of a search. `complete` is False when `max_pages` stopped it with a `next` link left.

    `duplicates`: entries dropped because the same (type, id) was already on an earlier page (the
    later copy is the one kept, at the earlier position).
    """

    resources: tuple[FhirResource, ...]
    pages: int
    complete: bool
    duplicates: int = 0

    def __repr__(self) -> str:
        return (f"SearchResults(resources={len(self.resources)}, pages={self.pages}, complete={self.complete}, "
                f"duplicates={self.duplicates})")


def version_from_etag(etag: str | None) -> str | None:
    """`W/"3"` -> `3`; None when there is no usable ETag."""
    if not etag:
        return None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return value or None


def if_match_value(version: str) -> str:
    """The If-Match header for a version id (`3` -> `W/"3"`); an ETag given as such is kept."""
    version = version.strip()
    if version.startswith(('W/"', '"')):
        return version
    return f'W/"{version}"'


#: The header that carries a logical call's correlation id (shared by its attempts and its token request).
CORRELATION_HEADER = "X-Correlation-Id"
