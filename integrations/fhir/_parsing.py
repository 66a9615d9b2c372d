"""FHIR JSON -> the connector's result types. Raises `BadBody` (the connector reports it as
`MalformedResponse`, with the attempt's status and correlation id)."""

from __future__ import annotations

import re

from integrations.fhir.models import BundlePage, FhirResource, JsonObject, version_from_etag

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id` datatype


class BadBody(ValueError):
    """A 2xx body that is not what was asked for. The message names fields, never their values' PHI."""


def check_resource_type(resource_type: str) -> str:
    if not RESOURCE_TYPE.fullmatch(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type!r}")
    return resource_type


def check_id(resource_id: str) -> str:
    if not RESOURCE_ID.fullmatch(resource_id):
        raise ValueError("not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return resource_id


def resource(body: JsonObject | None, *, etag: str | None = None, resource_type: str | None = None,
             resource_id: str | None = None) -> FhirResource:
    """A resource body, checked against the type (and id) that was asked for."""
    if body is None:
        raise BadBody("empty body where a resource was expected")
    found_type = body.get("resourceType")
    if not isinstance(found_type, str) or not RESOURCE_TYPE.fullmatch(found_type):
        raise BadBody("body has no valid resourceType")
    if resource_type is not None and found_type != resource_type:
        raise BadBody(f"expected a {resource_type}, got a {found_type}")
    found_id = body.get("id")
    if not isinstance(found_id, str) or not RESOURCE_ID.fullmatch(found_id):
        raise BadBody(f"{found_type} has no valid id")
    if resource_id is not None and found_id != resource_id:
        raise BadBody(f"{found_type} id differs from the one requested")
    version = _meta_version(body) or version_from_etag(etag)
    return FhirResource(resource_type=found_type, id=found_id, version_id=version, etag=etag, body=body)


def bundle_page(body: JsonObject | None) -> BundlePage:
    if body is None or body.get("resourceType") != "Bundle":
        raise BadBody("expected a Bundle")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise BadBody("Bundle.entry is not a list")
    resources: list[FhirResource] = []
    outcomes: list[JsonObject] = []
    for entry in entries:
        item = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(item, dict):
            raise BadBody("Bundle entry without a resource")
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, dict) else None
        if mode == "outcome" or (mode is None and item.get("resourceType") == "OperationOutcome"):
            outcomes.append(item)
        else:
            resources.append(resource(item))
    total = body.get("total")
    return BundlePage(resources=tuple(resources), outcomes=tuple(outcomes),
                      total=total if isinstance(total, int) and not isinstance(total, bool) else None,
                      next_url=_link(body, "next"))


def location_parts(location: str | None) -> tuple[str, str | None] | None:
    """(id, version) from a Location like `.../Patient/123/_history/4`; None if it has neither."""
    if not location:
        return None
    parts = location.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        return parts[-3], parts[-1]
    return (parts[-1], None) if parts and RESOURCE_ID.fullmatch(parts[-1]) else None


def _meta_version(body: JsonObject) -> str | None:
    meta = body.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else None


def _link(body: JsonObject, relation: str) -> str | None:
    links = body.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == relation:
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None
