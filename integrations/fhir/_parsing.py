"""FHIR JSON -> the connector's result types. Raises `BadBody` (the connector reports it as
`MalformedResponse`, with the attempt's status, correlation id and, for a 2xx that carried an
OperationOutcome instead of what was asked for, that outcome's issues).

Bad vendor input and what becomes of it:

| body (2xx)                                   | result                                          |
|----------------------------------------------|-------------------------------------------------|
| not JSON, truncated JSON, nested too deep    | MalformedResponse (at `_boundary`)              |
| JSON that is not an object                   | MalformedResponse (at `_boundary`)              |
| an OperationOutcome where a resource/Bundle was expected | MalformedResponse with its `issues`  |
| a resource of another type, without an id, another id | MalformedResponse                      |
| a Bundle without `entry`                     | an empty page (a searchset with no match has none) |
| a Bundle whose `entry` is not a list, an entry without a resource | MalformedResponse          |
| `total` that is not an integer               | `total` None                                    |
| a `next` link to another origin              | MalformedResponse before any request (`connector`) |
"""

from __future__ import annotations

import re

from integrations.fhir.errors import OutcomeIssue
from integrations.fhir.models import BundlePage, FhirResource, JsonObject, version_from_etag

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id` datatype
ISSUE_TEXT_MAX = 200


class BadBody(ValueError):
    """A 2xx body that is not what was asked for. The message names fields, never their values' PHI.

    `issues`: when the body was an OperationOutcome, its issues (a server reporting an error with 200).
    """

    def __init__(self, message: str, issues: tuple[OutcomeIssue, ...] = ()) -> None:
        super().__init__(message)
        self.issues = issues


def outcome_issues(body: object) -> tuple[OutcomeIssue, ...]:
    """Issue severity/code/text of an OperationOutcome body; nothing from any other body."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ()
    issues = body.get("issue")
    if not isinstance(issues, list):
        return ()
    found: list[OutcomeIssue] = []
    for issue in issues:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = details.get("text") if isinstance(details, dict) else None
        if not isinstance(text, str):
            diagnostics = issue.get("diagnostics")
            text = diagnostics if isinstance(diagnostics, str) else None
        found.append(OutcomeIssue(severity=str(issue.get("severity", "")), code=str(issue.get("code", "")),
                                  text=text[:ISSUE_TEXT_MAX] if text else None))
    return tuple(found)


def _unexpected_outcome(body: JsonObject, expected: str) -> BadBody:
    return BadBody(f"an OperationOutcome where a {expected} was expected", outcome_issues(body))


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
        if found_type == "OperationOutcome":
            raise _unexpected_outcome(body, resource_type)
        raise BadBody(f"expected a {resource_type}, got a {found_type}")
    found_id = body.get("id")
    if not isinstance(found_id, str) or not RESOURCE_ID.fullmatch(found_id):
        raise BadBody(f"{found_type} has no valid id")
    if resource_id is not None and found_id != resource_id:
        raise BadBody(f"{found_type} id differs from the one requested")
    version = _meta_version(body) or version_from_etag(etag)
    return FhirResource(resource_type=found_type, id=found_id, version_id=version, etag=etag, body=body)


def bundle_page(body: JsonObject | None) -> BundlePage:
    """One page of a searchset; a Bundle without `entry` is an empty page."""
    if body is not None and body.get("resourceType") == "OperationOutcome":
        raise _unexpected_outcome(body, "Bundle")
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
