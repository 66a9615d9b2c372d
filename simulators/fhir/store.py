"""An in-memory FHIR resource store: the seed of the FHIR R4 core every vendor simulator shares.

Resources are JSON objects kept by type and id, in insertion order (so searches are deterministic).
Each write stamps `meta.versionId` from a pluggable generator (UUIDs for Medplum, integers for
Cerner/HAPI, see `uuid_versions` / `integer_versions`) and `meta.lastUpdated` from the injected
clock; new ids come from an injected factory (`uuid_ids(rng)`). Writes are validated with the R4B
models; reads and searches return deep copies, so callers can never change stored data.

The store raises `ResourceNotFound`, `VersionConflict` and `InvalidResource`; mapping them to
statuses is the vendor's business (Medplum answers a version conflict with 412, Cerner with 409).
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from integrations.clock import Clock
from simulators.errors import InvalidResource, ResourceNotFound, VersionConflict
from simulators.fhir.validation import validate_resource

Resource = dict[str, Any]
#: Makes the id of a new resource.
IdFactory = Callable[[], str]
#: Makes the next version id from the previous one (None for a new resource).
VersionIdFactory = Callable[[str | None], str]
Validator = Callable[[Mapping[str, Any]], None]


def rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`, so the same seed gives the same UUIDs."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uuid_ids(rng: random.Random) -> IdFactory:
    return lambda: rng_uuid(rng)


def uuid_versions(rng: random.Random) -> VersionIdFactory:
    """Medplum: every version id is a fresh UUID."""
    return lambda previous: rng_uuid(rng)


def integer_versions(first: int = 1) -> VersionIdFactory:
    """HAPI/Cerner: "1", "2", ... (Cerner starts at "0": `integer_versions(0)`)."""
    return lambda previous: str(first if previous is None else int(previous) + 1)


def format_instant(moment: datetime) -> str:
    """FHIR instant with milliseconds and Z, as Medplum writes `meta.lastUpdated`."""
    if moment.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ResourceStore:
    """Current versions of resources, by type and id. Not thread-safe: one event loop owns it."""

    def __init__(self, clock: Clock, *, new_id: IdFactory, new_version: VersionIdFactory,
                 validator: Validator | None = validate_resource) -> None:
        self._clock = clock
        self._new_id = new_id
        self._new_version = new_version
        self._validator = validator
        self._resources: dict[str, dict[str, Resource]] = {}

    # -- reads ---------------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Resource:
        return copy.deepcopy(self._current(resource_type, resource_id))

    def exists(self, resource_type: str, resource_id: str) -> bool:
        return resource_id in self._resources.get(resource_type, {})

    def version(self, resource_type: str, resource_id: str) -> str:
        return str(self._current(resource_type, resource_id)["meta"]["versionId"])

    def search(self, resource_type: str, *, ids: Sequence[str] | None = None) -> list[Resource]:
        """Resources of `resource_type` in insertion order; only those whose id is in `ids` if given."""
        by_id = self._resources.get(resource_type, {})
        if ids is None:
            return [copy.deepcopy(resource) for resource in by_id.values()]
        wanted = set(ids)
        return [copy.deepcopy(resource) for resource_id, resource in by_id.items() if resource_id in wanted]

    def count(self, resource_type: str) -> int:
        return len(self._resources.get(resource_type, {}))

    def __iter__(self) -> Iterator[Resource]:
        for by_id in self._resources.values():
            for resource in by_id.values():
                yield copy.deepcopy(resource)

    # -- writes --------------------------------------------------------------------------------

    def create(self, resource: Mapping[str, Any]) -> Resource:
        """Store `resource` under a new server-assigned id (any id in the body is replaced)."""
        return self._write(resource, self._new_id(), previous_version=None)

    def update(self, resource: Mapping[str, Any], *, expected_version: str | None = None) -> Resource:
        """Replace an existing resource (type and id from the body); `expected_version` is If-Match."""
        resource_type, resource_id = _type_and_id(resource)
        current = self._current(resource_type, resource_id)
        current_version = str(current["meta"]["versionId"])
        if expected_version is not None and expected_version != current_version:
            raise VersionConflict(resource_type, resource_id, expected_version, current_version)
        return self._write(resource, resource_id, previous_version=current_version)

    def upsert(self, resource: Mapping[str, Any], *, expected_version: str | None = None) -> tuple[Resource, bool]:
        """Update if the resource exists, else create it with the body's id; returns (resource, created).

        An expected version for a resource that does not exist raises `ResourceNotFound`.
        """
        resource_type, resource_id = _type_and_id(resource)
        if self.exists(resource_type, resource_id):
            return self.update(resource, expected_version=expected_version), False
        if expected_version is not None:
            raise ResourceNotFound(resource_type, resource_id)
        return self._write(resource, resource_id, previous_version=None), True

    def clear(self) -> None:
        self._resources.clear()

    # -- internals -----------------------------------------------------------------------------

    def _current(self, resource_type: str, resource_id: str) -> Resource:
        try:
            return self._resources[resource_type][resource_id]
        except KeyError:
            raise ResourceNotFound(resource_type, resource_id) from None

    def _write(self, resource: Mapping[str, Any], resource_id: str, *, previous_version: str | None) -> Resource:
        stored: Resource = copy.deepcopy(dict(resource))
        stored["id"] = resource_id
        meta = stored.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise InvalidResource(f"{stored.get('resourceType')}.meta: must be an object", ("meta",))
        meta = dict(meta or {})
        meta["versionId"] = self._new_version(previous_version)
        meta["lastUpdated"] = format_instant(self._clock.now())
        # resourceType, id and meta first, for readable payloads.
        stored = {"resourceType": stored.get("resourceType"), "id": resource_id, "meta": meta,
                  **{key: value for key, value in stored.items() if key not in ("resourceType", "id", "meta")}}
        if self._validator is not None:
            self._validator(stored)
        resource_type = stored["resourceType"]
        if not isinstance(resource_type, str):  # the validator is optional; the key is not
            raise InvalidResource("Missing resourceType", ("resourceType",))
        self._resources.setdefault(resource_type, {})[resource_id] = stored
        return copy.deepcopy(stored)


def _type_and_id(resource: Mapping[str, Any]) -> tuple[str, str]:
    resource_type = resource.get("resourceType")
    resource_id = resource.get("id")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource("Missing resourceType", ("resourceType",))
    if not isinstance(resource_id, str) or not resource_id:
        raise InvalidResource(f"{resource_type}.id: missing", ("id",))
    return resource_type, resource_id
