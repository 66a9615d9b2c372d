"""The FHIR interactions themselves, apart from HTTP routing, so REST calls and Bundle entries share them.

`FhirService` runs one interaction at a time against the store, in the personality's way, and maps
every store, search and patch error to the personality's status and OperationOutcome at one boundary
(`_mapped`):

    ResourceDeleted    -> deleted_read_status (410 `deleted`, or 404)
    ResourceNotFound   -> 404 `not-found`
    VersionConflict    -> stale_version_status (409 `conflict` or 412 `processing`)
    InvalidResource    -> invalid_resource_status (400 or 422, `invalid`)
    MultipleMatches    -> 412 `multiple-matches`
    CursorExpired      -> 410 `expired`;   SearchError, PatchError -> 400 `invalid`

`run(request, resource_type, interaction, resource_id, action)` wraps an interaction: the vendor's
authorizer first (so nothing is revealed to a caller it refuses), then the action, then the
interaction hook with the final status (and the id of a resource it created), also when it failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request

from simulators.errors import InvalidResource, ResourceNotFound, VersionConflict
from simulators.fhir.interaction import Authorizer, Interaction, InteractionHook
from simulators.fhir.outcome import OutcomeError
from simulators.fhir.paging import CursorExpired, Pager, history_bundle, searchset
from simulators.fhir.patch import PatchError, apply_patch
from simulators.fhir.personality import FhirPersonality, SearchSummary
from simulators.fhir.search import SearchError, date_range, parse_query, search_params
from simulators.fhir.store import MultipleMatches, Resource, ResourceDeleted, ResourceStore

T = TypeVar("T")
#: The errors `FhirService._outcome` maps (subclasses: ResourceDeleted, CursorExpired).
_MAPPED = (ResourceNotFound, VersionConflict, InvalidResource, MultipleMatches, SearchError, PatchError)
JsonObject = dict[str, Any]
Items = Sequence[tuple[str, str]]


class FhirService:
    """One vendor's FHIR interactions over one store."""

    def __init__(self, *, store: ResourceStore, personality: FhirPersonality, pager: Pager,
                 authorize: Authorizer, on_interaction: InteractionHook | None) -> None:
        self.store = store
        self.personality = personality
        self.pager = pager
        self._authorize = authorize
        self._on_interaction = on_interaction
        self.types = frozenset(personality.resource_types)

    # -- plumbing --------------------------------------------------------------------------------

    def error(self, status: int, code: str, text: str) -> OutcomeError:
        return OutcomeError(status, self.personality.error(status, code, text))

    async def authorize(self, request: Request, resource_type: str, interaction: Interaction) -> str:
        """The vendor's authorizer: the client id, or an OutcomeError (401/403/429)."""
        return await self._authorize(request, resource_type, interaction)

    def report(self, client: str, interaction: Interaction, resource_type: str, resource_id: str | None,
               status: int) -> None:
        if self._on_interaction is not None:
            self._on_interaction(client, interaction, resource_type, resource_id, status)

    async def run(self, request: Request, resource_type: str, interaction: Interaction, resource_id: str | None,
                  action: Callable[[], T]) -> T:
        """Authorize, run `action`, report the outcome to the interaction hook (also on failure)."""
        client = await self.authorize(request, resource_type, interaction)
        status = 500
        try:
            result = action()
            status = _status_of(result)
            resource_id = resource_id or _id_of(result, resource_type)
            return result
        except OutcomeError as exc:
            status = exc.status
            raise
        finally:
            self.report(client, interaction, resource_type, resource_id, status)

    async def run_async(self, request: Request, resource_type: str, interaction: Interaction,
                        resource_id: str | None, action: Callable[[], Awaitable[T]]) -> T:
        """`run` for an action that awaits (reads the request body)."""
        client = await self.authorize(request, resource_type, interaction)
        status = 500
        try:
            result = await action()
            status = _status_of(result)
            resource_id = resource_id or _id_of(result, resource_type)
            return result
        except OutcomeError as exc:
            status = exc.status
            raise
        finally:
            self.report(client, interaction, resource_type, resource_id, status)

    def check_type(self, resource_type: str) -> None:
        if resource_type not in self.types:
            raise self.error(404, "not-found", f"Unknown resource type: {resource_type[:64]}")

    def check_writable(self) -> None:
        if self.personality.read_only:
            raise self.error(self.personality.read_only_status, "not-supported", "This server is read-only")

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except _MAPPED as exc:
            raise self._outcome(exc) from None

    def _outcome(self, exc: Exception) -> OutcomeError:
        """The personality's answer to a store, search or patch error (the table in the module docstring)."""
        p = self.personality
        if isinstance(exc, ResourceDeleted):
            status = p.deleted_read_status
            return self.error(status, "deleted" if status == 410 else "not-found",
                              "Resource deleted" if status == 410 else "Not found")
        if isinstance(exc, ResourceNotFound):
            return self.error(404, "not-found", "Not found")
        if isinstance(exc, VersionConflict):
            stale = p.stale_version_status
            return self.error(stale, "conflict" if stale == 409 else "processing",
                              "Version conflict" if stale == 409 else "Precondition Failed")
        if isinstance(exc, InvalidResource):
            error = self.error(p.invalid_resource_status, "invalid", exc.message)
            issue = error.outcome["issue"][0]
            if exc.expression and "expression" not in issue:
                issue["expression"] = list(exc.expression)
            return error
        if isinstance(exc, MultipleMatches):
            return self.error(412, "multiple-matches", str(exc))
        if isinstance(exc, CursorExpired):
            return self.error(410, "expired", str(exc))
        return self.error(400, "invalid", str(exc))  # SearchError, PatchError

    def _check_body(self, resource_type: str, body: Mapping[str, Any]) -> None:
        found = body.get("resourceType")
        if found != resource_type:
            shown = found if isinstance(found, str) and found else "<EMPTY>"
            raise self.error(400, "invalid", f"Incorrect resource type: expected {resource_type}, "
                                             f"but found {shown[:64]}")

    def where(self, resource_type: str, items: Items) -> Callable[[Mapping[str, Any]], bool]:
        """A condition (If-None-Exist, conditional update/delete); an empty one is refused."""
        with self._mapped():
            query = parse_query(resource_type, items, unknown="error")
        if not query.filters:
            raise self.error(412, "invalid", "A conditional interaction needs at least one search criterion")
        return query.matches

    # -- instance and type interactions -----------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Resource:
        self.check_type(resource_type)
        try:  # not `_mapped()`: a context manager per read cost more than the read
            return self.store.read_shared(resource_type, resource_id)
        except ResourceNotFound as exc:
            raise self._outcome(exc) from None

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> Resource:
        self.check_type(resource_type)
        with self._mapped():
            return self.store.vread(resource_type, resource_id, version_id)

    def create(self, resource_type: str, body: Mapping[str, Any], if_none_exist: str | None = None, *,
               assigned_id: str | None = None) -> tuple[Resource, int]:
        """Create (201), or with `if_none_exist` return the one match (200); `assigned_id`: a reserved id."""
        self.check_type(resource_type)
        self.check_writable()
        self._check_body(resource_type, body)
        if if_none_exist is not None and self.personality.supports_conditional_create:
            condition = self.where(resource_type, parse_qsl(if_none_exist.lstrip("?"), keep_blank_values=True))
            with self._mapped():
                resource, created = self.store.conditional_create(body, condition)
            return resource, 201 if created else 200
        with self._mapped():
            return self.store.create(body, assigned_id=assigned_id), 201

    def update(self, resource_type: str, resource_id: str, body: Mapping[str, Any], if_match: str | None
               ) -> tuple[Resource, int]:
        self.check_type(resource_type)
        self.check_writable()
        self._check_body(resource_type, body)
        if body.get("id") != resource_id:
            raise self.error(400, "invalid", "Incorrect ID")
        with self._mapped():
            resource, created = self.store.upsert(body, expected_version=if_match)
        return resource, self.personality.put_create_status if created else 200

    def conditional_update(self, resource_type: str, items: Items, body: Mapping[str, Any], if_match: str | None
                           ) -> tuple[Resource, int]:
        self.check_type(resource_type)
        self.check_writable()
        if not self.personality.supports_conditional_update:
            raise self.error(405, "not-supported", "Conditional update is not supported")
        self._check_body(resource_type, body)
        condition = self.where(resource_type, items)
        with self._mapped():
            resource, created = self.store.conditional_update(body, condition, expected_version=if_match)
        return resource, self.personality.put_create_status if created else 200

    def patch(self, resource_type: str, resource_id: str, operations: object, if_match: str | None) -> Resource:
        self.check_type(resource_type)
        self.check_writable()
        if not self.personality.supports_patch:
            raise self.error(405, "not-supported", "PATCH is not supported")
        with self._mapped():
            return self.store.modify(resource_type, resource_id, lambda current: apply_patch(current, operations),
                                     expected_version=if_match)

    def delete(self, resource_type: str, resource_id: str, if_match: str | None = None) -> JsonObject:
        self.check_type(resource_type)
        self.check_writable()
        with self._mapped():
            self.store.delete(resource_type, resource_id, expected_version=if_match)  # twice is fine
        return self.personality.error(200, "informational", "All OK")

    def conditional_delete(self, resource_type: str, items: Items) -> JsonObject:
        self.check_type(resource_type)
        self.check_writable()
        condition = self.where(resource_type, items)
        matches = self.store.search(resource_type, where=condition, copy_results=False)
        if len(matches) > 1:
            raise self.error(412, "multiple-matches", f"{resource_type}: the condition matched {len(matches)}")
        with self._mapped():
            for match in matches:
                self.store.delete(resource_type, match["id"])
        return self.personality.error(200, "informational", "All OK")

    # -- searches and histories ------------------------------------------------------------------

    def search(self, resource_type: str, items: Items, *, url: str, base: str) -> JsonObject:
        """A searchset Bundle; `url` is the search URL without query (for links), `base` the FHIR base."""
        self.check_type(resource_type)
        with self._mapped():
            page = self.pager.request(items)
            query = parse_query(resource_type, page.items, unknown=self.personality.unknown_search_param)
            where = query.matches if query.filters else None
            matches = query.ordered(self.store.search(resource_type, where=where, copy_results=False))
            total = len(matches)
            links = self.pager.links(url, list(query.used), page, total)
        make_outcome = self.personality.search_outcome
        outcome = None if make_outcome is None else make_outcome(
            SearchSummary(resource_type, query.ignored, total, page.offset))
        if query.summary_count or page.count == 0:
            return searchset([], base=base, total=total, links=links, outcome=outcome)
        shown = matches[page.offset:page.offset + page.count]
        if query.elements is not None:
            shown = [query.shape(r) for r in shown]
        return searchset(shown, base=base, total=total, links=links, outcome=outcome)

    def history(self, resource_type: str | None, resource_id: str | None, items: Items, *, url: str,
                base: str) -> JsonObject:
        if resource_type is not None:
            self.check_type(resource_type)
        if not self.personality.supports_history:
            raise self.error(405, "not-supported", "History is not supported")
        since = None
        unknown = [k for k, _ in items if k not in ("_since", "_count", "_offset", "_page", "_format", "_pretty")]
        if unknown and self.personality.unknown_search_param == "error":
            raise self.error(400, "invalid", f"Unknown history parameter: {unknown[0][:64]}")
        with self._mapped():
            page = self.pager.request(items)
            for key, value in page.items:
                if key == "_since":
                    parsed = date_range(value)
                    if parsed is None:
                        raise SearchError("_since must be a FHIR instant")
                    since = parsed[0]
            versions = self.store.history(resource_type, resource_id, since=since)
            if resource_id is not None and resource_type is not None and not versions:
                raise ResourceNotFound(resource_type, resource_id)
            used = [(k, v) for k, v in page.items if k == "_since"]
            links = self.pager.links(url, used, page, len(versions))
        return history_bundle(versions[page.offset:page.offset + page.count], base=base, total=len(versions),
                              links=links)

    def compartment(self, patient_id: str, types: Sequence[str] | None = None) -> list[Resource]:
        """The patient and every resource that refers to it as its patient (creation order per type).

        AuditEvents are left out unless `types` names them.
        """
        patient = self.read("Patient", patient_id)
        found: list[Resource] = [patient]
        for resource_type in self.store.types():
            if resource_type == "Patient" or (types is not None and resource_type not in types):
                continue
            if types is None and resource_type == "AuditEvent":
                continue  # the audit trail is asked for by name (`_type`), not swept up
            param = search_params(resource_type).get("patient")
            if param is None:
                continue
            query = parse_query(resource_type, [("patient", f"Patient/{patient_id}")])
            found.extend(self.store.search(resource_type, where=query.matches, copy_results=False))
        return found

    def everything(self, patient_id: str, items: Items, *, url: str, base: str) -> JsonObject:
        if not self.personality.supports_everything:
            raise self.error(404, "not-supported", "$everything is not supported")
        types = None
        for key, value in items:
            if key == "_type":
                types = [t.strip() for t in value.split(",") if t.strip()]
        resources = self.compartment(patient_id, types)
        return searchset(resources, base=base, total=len(resources), links=[{"relation": "self", "url": url}])


def _id_of(result: object, resource_type: str) -> str | None:
    """The id of the resource a create or conditional write returned (for the interaction hook)."""
    resource = result[0] if isinstance(result, tuple) and result else result
    if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
        found = resource.get("id")
        return found if isinstance(found, str) else None
    return None


def _status_of(result: object) -> int:
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        return result[1]
    return 200
