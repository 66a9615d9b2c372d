"""An in-memory, versioned FHIR resource store: the data half of the FHIR R4 core every vendor shares.

Every resource keeps its whole history (`Version`s, oldest first); a delete appends a tombstone
version (no resource), after which reads raise `ResourceDeleted` (a `ResourceNotFound`, so code that
does not care answers 404; vendors that answer 410 catch it first). Each write stamps `meta.versionId`
from a pluggable generator (UUIDs for Medplum, integers for Cerner/HAPI: `uuid_versions` /
`integer_versions`) and `meta.lastUpdated` from the injected clock; new ids come from an injected
factory (`uuid_ids(rng)`). Writes are validated with the R4B models; reads and searches return deep
copies, so callers can never change stored data. Iteration is in first-creation order, so searches
are deterministic.

Conditional operations take a predicate (`Where`), built by `simulators.fhir.search` from the query:
the store does not parse search parameters. More than one match raises `MultipleMatches` (412 in
FHIR). `atomic()` undoes every write made in its block if the block raises (transaction Bundles).

Drift (the admin API changes data behind the clients' backs): `touch` makes a new version with the
same content, `shift_last_updated` moves the current version's `meta.lastUpdated` without a new
version, and `replace_silently` swaps the current content while keeping versionId and lastUpdated,
so an ETag a client holds no longer describes what the server has.

Errors: `ResourceNotFound`, `ResourceDeleted`, `VersionConflict`, `InvalidResource`, `MultipleMatches`;
mapping them to statuses is the personality's business (Medplum: 412 on a conflict, Cerner: 409).
`Version` and the store's own errors are defined in `simulators.fhir.versions` (re-exported here).

Serving reads fast: a stored object is never changed (every write stores a new one), so the JSON of the
current versions is kept (`encoded`, `encoded_match`: `simulators.fhir.json_cache`) and so is each type's
list of current resources (the unfiltered search); both are dropped for whatever a write replaces.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from integrations.clock import Clock
from simulators.errors import InvalidResource, ResourceNotFound
from simulators.fhir.identity import (
    IdFactory,
    VersionIdFactory,
    format_instant,
    integer_versions,
    rng_uuid,
    uuid_ids,
    uuid_versions,
)
from simulators.fhir.json_cache import JsonCache
from simulators.fhir.validation import validate_resource
from simulators.fhir.versions import (
    Method,
    MultipleMatches,
    Resource,
    ResourceDeleted,
    Version,
    check_version,
    ordered_keys,
    type_and_id,
    type_of,
)

__all__ = ["IdFactory", "MultipleMatches", "Resource", "ResourceDeleted", "ResourceStore", "Version",
           "VersionIdFactory", "Where", "format_instant", "integer_versions", "rng_uuid", "uuid_ids", "uuid_versions"]

Validator = Callable[[Mapping[str, Any]], None]
#: A search predicate over stored resources (see `simulators.fhir.search`).
Where = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    records: dict[str, dict[str, list[Version]]]
    log_length: int


class ResourceStore:
    """Resources with their histories, by type and id. Not thread-safe: one event loop owns it."""

    def __init__(self, clock: Clock, *, new_id: IdFactory, new_version: VersionIdFactory,
                 validator: Validator | None = validate_resource) -> None:
        self._clock = clock
        self._new_id = new_id
        self._new_version = new_version
        self._validator = validator
        self._records: dict[str, dict[str, list[Version]]] = {}
        self._log: list[tuple[str, str, int]] = []  # (type, id, version index), in write order
        # Caches, dropped as versions change: current versions' JSON, each type's current resources in order.
        self._json = JsonCache(self._is_current)
        self._current: dict[str, list[Resource]] = {}

    def __repr__(self) -> str:
        counts = {resource_type: self.count(resource_type) for resource_type in sorted(self._records)}
        return f"ResourceStore({counts})"

    # -- reads ---------------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Resource:
        return copy.deepcopy(self._live(resource_type, resource_id))

    def read_shared(self, resource_type: str, resource_id: str) -> Resource:
        """Like `read` without the copy: the stored object itself, which the caller must not change."""
        return self._live(resource_type, resource_id)

    def encoded(self, resource: Mapping[str, Any]) -> bytes:
        """`resource` as compact JSON; for a stored current version (as `read_shared` or an uncopied
        `search` hands out) the bytes are encoded once and reused until the resource changes."""
        return self._json.resource(resource)

    def encoded_match(self, full_url: str, resource: Mapping[str, Any]) -> bytes:
        """A searchset match entry of `resource` as JSON (`json_cache.match_entry`), cached like `encoded`."""
        return self._json.match(full_url, resource)

    def exists(self, resource_type: str, resource_id: str) -> bool:
        versions = self._records.get(resource_type, {}).get(resource_id)
        return versions is not None and not versions[-1].deleted

    def version(self, resource_type: str, resource_id: str) -> str:
        return str(self._live(resource_type, resource_id)["meta"]["versionId"])

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> Resource:
        for version in self._versions(resource_type, resource_id):
            if version.version_id == version_id:
                if version.resource is None:
                    raise ResourceDeleted(resource_type, resource_id, version_id)
                return copy.deepcopy(version.resource)
        raise ResourceNotFound(resource_type, f"{resource_id}/_history/{version_id}")

    def search(self, resource_type: str, *, ids: Sequence[str] | None = None, where: Where | None = None,
               copy_results: bool = True) -> list[Resource]:
        """Current resources of a type in creation order, filtered by `ids` and `where` if given.

        `copy_results=False` returns the stored objects themselves (read-only; cheaper for paging).
        """
        if ids is None and where is None and not copy_results:  # the common unfiltered page
            current = self._current.get(resource_type)
            if current is None:
                current = self._current[resource_type] = [
                    versions[-1].resource for versions in self._records.get(resource_type, {}).values()
                    if versions[-1].resource is not None]
            return list(current)
        wanted = None if ids is None else set(ids)
        found: list[Resource] = []
        for resource_id, versions in self._records.get(resource_type, {}).items():
            resource = versions[-1].resource
            if resource is None or (wanted is not None and resource_id not in wanted):
                continue
            if where is None or where(resource):
                found.append(copy.deepcopy(resource) if copy_results else resource)
        return found

    def count(self, resource_type: str) -> int:
        return sum(1 for versions in self._records.get(resource_type, {}).values() if not versions[-1].deleted)

    def types(self) -> list[str]:
        return sorted(self._records)

    def history(self, resource_type: str | None = None, resource_id: str | None = None, *,
                since: datetime | None = None) -> list[Version]:
        """Versions newest first: of one resource, of one type, or of everything (`resource_type=None`)."""
        if resource_id is not None:
            if resource_type is None:
                raise ValueError("an instance history needs a resource type")
            versions = list(reversed(self._versions(resource_type, resource_id)))
        else:
            versions = [self._records[t][i][n] for t, i, n in reversed(self._log)
                        if resource_type is None or t == resource_type]
        if since is not None:
            cutoff = format_instant(since)
            versions = [version for version in versions if version.last_updated >= cutoff]
        return versions

    def __iter__(self) -> Iterator[Resource]:
        for by_id in self._records.values():
            for versions in by_id.values():
                if versions[-1].resource is not None:
                    yield copy.deepcopy(versions[-1].resource)

    # -- writes --------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh server-assigned id (a transaction reserves ids before it writes)."""
        return self._new_id()

    def create(self, resource: Mapping[str, Any], *, assigned_id: str | None = None, validate: bool = True
               ) -> Resource:
        """Store `resource` under a new server-assigned id (any id in the body is replaced).

        `assigned_id` is an id reserved earlier with `new_id()`; it must not be in use. `validate=False`
        is for resources the simulator itself builds (AuditEvents), which skip the R4B models.
        """
        resource_id = assigned_id if assigned_id is not None else self._new_id()
        if self._records.get(type_of(resource), {}).get(resource_id):
            raise InvalidResource(f"{type_of(resource)}/{resource_id}: id already in use", ("id",))
        return self._write(resource, resource_id, previous=None, method="POST", validate=validate)

    def record(self, resource: Resource, *, last_updated: str | None = None) -> str:
        """Store a resource the simulator built itself (an AuditEvent): no validation, no copies; its id.

        The store takes `resource` over: the caller must not keep or change it. `last_updated` (a FHIR
        instant) backdates it to when the recorded event happened; default now.
        """
        resource_type = type_of(resource)
        resource_id = self._new_id()
        version_id = self._new_version(None)
        last_updated = last_updated or format_instant(self._clock.now())
        stored = {"resourceType": resource_type, "id": resource_id,
                  "meta": {"versionId": version_id, "lastUpdated": last_updated}, **resource}
        stored["id"], stored["meta"] = resource_id, {"versionId": version_id, "lastUpdated": last_updated}
        self._append(Version(resource_type, resource_id, version_id, last_updated, "POST", stored))
        return resource_id

    def conditional_create(self, resource: Mapping[str, Any], where: Where) -> tuple[Resource, bool]:
        """If-None-Exist: the one existing match (not created), or a new resource; >1 match raises."""
        matches = self.search(type_of(resource), where=where)
        if len(matches) > 1:
            raise MultipleMatches(type_of(resource), len(matches))
        if matches:
            return matches[0], False
        return self.create(resource), True

    def update(self, resource: Mapping[str, Any], *, expected_version: str | None = None,
               method: Method = "PUT") -> Resource:
        """Replace an existing resource (type and id from the body); `expected_version` is If-Match."""
        resource_type, resource_id = type_and_id(resource)
        current = self._current_version(resource_type, resource_id)
        if current.deleted:
            raise ResourceDeleted(resource_type, resource_id, current.version_id)
        check_version(current, expected_version)
        return self._write(resource, resource_id, previous=current, method=method)

    def upsert(self, resource: Mapping[str, Any], *, expected_version: str | None = None) -> tuple[Resource, bool]:
        """Update if the resource exists, else create it with the body's id; returns (resource, created).

        A deleted resource comes back to life with a new version (created=True). An expected version
        for a resource that does not exist raises `ResourceNotFound`.
        """
        resource_type, resource_id = type_and_id(resource)
        versions = self._records.get(resource_type, {}).get(resource_id)
        if versions is not None and not versions[-1].deleted:
            return self.update(resource, expected_version=expected_version), False
        if expected_version is not None:
            raise ResourceNotFound(resource_type, resource_id)
        previous = versions[-1] if versions else None
        return self._write(resource, resource_id, previous=previous, method="PUT"), True

    def conditional_update(self, resource: Mapping[str, Any], where: Where, *,
                           expected_version: str | None = None) -> tuple[Resource, bool]:
        """PUT Type?search: update the one match, or create when none (with the body's id, if any)."""
        resource_type = type_of(resource)
        matches = self.search(resource_type, where=where, copy_results=False)
        if len(matches) > 1:
            raise MultipleMatches(resource_type, len(matches))
        body_id = resource.get("id")
        if matches:
            match_id = matches[0]["id"]
            if body_id is not None and body_id != match_id:
                raise InvalidResource(f"{resource_type}.id: does not match the resource found by the condition",
                                      ("id",))
            return self.update({**resource, "id": match_id}, expected_version=expected_version), False
        if expected_version is not None:
            raise ResourceNotFound(resource_type, str(body_id or "?"))
        if isinstance(body_id, str) and body_id:
            return self.upsert(resource)
        return self.create(resource), True

    def modify(self, resource_type: str, resource_id: str, change: Callable[[Resource], Mapping[str, Any]], *,
               expected_version: str | None = None) -> Resource:
        """PATCH: `change` gets a copy of the current resource and returns the new content."""
        current = self._current_version(resource_type, resource_id)
        if current.resource is None:
            raise ResourceDeleted(resource_type, resource_id, current.version_id)
        check_version(current, expected_version)
        changed = dict(change(copy.deepcopy(current.resource)))
        if changed.get("resourceType") != resource_type or changed.get("id") != resource_id:
            raise InvalidResource("A patch may not change resourceType or id", ("resourceType", "id"))
        return self._write(changed, resource_id, previous=current, method="PATCH")

    def delete(self, resource_type: str, resource_id: str, *, expected_version: str | None = None) -> str | None:
        """Delete: a tombstone version, whose id is returned; None if it was already deleted."""
        current = self._current_version(resource_type, resource_id)
        if current.deleted:
            return None
        check_version(current, expected_version)
        version = Version(resource_type, resource_id, self._new_version(current.version_id),
                          format_instant(self._clock.now()), "DELETE", None)
        self._append(version)
        return version.version_id

    def clear(self) -> None:
        self._records.clear()
        self._log.clear()
        self._json.clear()
        self._current.clear()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Undo every write made in the block if it raises (ids and versions drawn stay drawn)."""
        snapshot = _Snapshot({t: {i: list(v) for i, v in by_id.items()} for t, by_id in self._records.items()},
                             len(self._log))
        try:
            yield
        except BaseException:
            self._records = snapshot.records
            del self._log[snapshot.log_length:]
            self._json.clear()
            self._current.clear()
            raise

    # -- drift ---------------------------------------------------------------------------------

    def touch(self, resource_type: str, resource_id: str) -> Resource:
        """A new version with unchanged content (a version bump behind the clients' backs)."""
        current = self._live(resource_type, resource_id)
        return self._write(current, resource_id, previous=self._current_version(resource_type, resource_id),
                           method="PUT")

    def shift_last_updated(self, resource_type: str, resource_id: str, seconds: float) -> Resource:
        """Move the current version's `meta.lastUpdated` by `seconds` (negative: into the past)."""
        version = self._current_version(resource_type, resource_id)
        if version.resource is None:
            raise ResourceDeleted(resource_type, resource_id, version.version_id)
        moved = format_instant(datetime.fromisoformat(version.last_updated) + timedelta(seconds=seconds))
        resource = copy.deepcopy(version.resource)
        resource["meta"]["lastUpdated"] = moved
        self._changed(version)
        self._records[resource_type][resource_id][-1] = replace(version, last_updated=moved, resource=resource)
        return copy.deepcopy(resource)

    def replace_silently(self, resource_type: str, resource_id: str, resource: Mapping[str, Any]) -> Resource:
        """Swap the current content, keeping versionId and lastUpdated (the ETag now lies)."""
        version = self._current_version(resource_type, resource_id)
        if version.resource is None:
            raise ResourceDeleted(resource_type, resource_id, version.version_id)
        meta = {**(resource.get("meta") or {}), **version.resource["meta"]}
        stored = ordered_keys({**copy.deepcopy(dict(resource)), "resourceType": resource_type, "id": resource_id,
                           "meta": meta})
        if self._validator is not None:
            self._validator(stored)
        self._changed(version)
        self._records[resource_type][resource_id][-1] = replace(version, resource=stored)
        return copy.deepcopy(stored)

    # -- internals -----------------------------------------------------------------------------

    def _versions(self, resource_type: str, resource_id: str) -> list[Version]:
        try:
            return self._records[resource_type][resource_id]
        except KeyError:
            raise ResourceNotFound(resource_type, resource_id) from None

    def _current_version(self, resource_type: str, resource_id: str) -> Version:
        return self._versions(resource_type, resource_id)[-1]

    def _live(self, resource_type: str, resource_id: str) -> Resource:
        version = self._current_version(resource_type, resource_id)
        if version.resource is None:
            raise ResourceDeleted(resource_type, resource_id, version.version_id)
        return version.resource

    def _changed(self, replaced: Version) -> None:
        """`replaced` stops being the current version of its resource: drop what was cached for it."""
        self._current.pop(replaced.resource_type, None)
        if replaced.resource is not None:
            self._json.forget(replaced.resource)

    def _is_current(self, resource: Mapping[str, Any]) -> bool:
        versions = self._records.get(str(resource.get("resourceType")), {}).get(str(resource.get("id")))
        return versions is not None and versions[-1].resource is resource

    def _append(self, version: Version) -> None:
        versions = self._records.setdefault(version.resource_type, {}).setdefault(version.resource_id, [])
        if versions:
            self._changed(versions[-1])
        else:
            self._current.pop(version.resource_type, None)
        versions.append(version)
        self._log.append((version.resource_type, version.resource_id, len(versions) - 1))

    def _write(self, resource: Mapping[str, Any], resource_id: str, *, previous: Version | None,
               method: Method, validate: bool = True) -> Resource:
        stored: Resource = copy.deepcopy(dict(resource))
        meta = stored.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise InvalidResource(f"{stored.get('resourceType')}.meta: must be an object", ("meta",))
        meta = dict(meta or {})
        meta["versionId"] = self._new_version(previous.version_id if previous else None)
        meta["lastUpdated"] = format_instant(self._clock.now())
        stored = ordered_keys({**stored, "id": resource_id, "meta": meta})
        if self._validator is not None and validate:
            self._validator(stored)
        resource_type = stored["resourceType"]
        if not isinstance(resource_type, str) or not resource_type:  # the validator is optional; the key is not
            raise InvalidResource("Missing resourceType", ("resourceType",))
        self._append(Version(resource_type, resource_id, meta["versionId"], meta["lastUpdated"], method, stored))
        return copy.deepcopy(stored)
