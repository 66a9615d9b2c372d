"""What the resource store keeps and refuses: `Version`s of resources, and the store's own errors.

Split from `simulators.fhir.store` (which re-exports everything here) with the store's small helpers:
`ordered_keys` (resourceType, id and meta first), `check_version` (If-Match), `type_of`/`type_and_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from simulators.errors import InvalidResource, ResourceNotFound, StoreError, VersionConflict

__all__ = ["Method", "MultipleMatches", "Resource", "ResourceDeleted", "Version", "check_version", "ordered_keys",
           "type_and_id", "type_of"]

Resource = dict[str, Any]
Method = Literal["POST", "PUT", "PATCH", "DELETE"]


class ResourceDeleted(ResourceNotFound):
    """The resource existed and was deleted (410 Gone on servers that say so)."""

    def __init__(self, resource_type: str, resource_id: str, version_id: str) -> None:
        super().__init__(resource_type, resource_id)
        self.version_id = version_id


class MultipleMatches(StoreError):
    """A conditional create, update or delete matched more than one resource (412)."""

    def __init__(self, resource_type: str, matches: int) -> None:
        super().__init__(f"{resource_type}: the condition matched {matches} resources")
        self.resource_type = resource_type
        self.matches = matches


@dataclass(frozen=True, slots=True)
class Version:
    """One version of one resource; `resource` is None for a deletion. Treat `resource` as read-only."""

    resource_type: str
    resource_id: str
    version_id: str
    last_updated: str
    method: Method
    resource: Resource | None

    @property
    def deleted(self) -> bool:
        return self.resource is None


def ordered_keys(resource: Resource) -> Resource:
    """resourceType, id and meta first, for readable payloads."""
    head = ("resourceType", "id", "meta")
    return {**{key: resource.get(key) for key in head},
            **{key: value for key, value in resource.items() if key not in head}}


def check_version(current: Version, expected: str | None) -> None:
    if expected is not None and expected != current.version_id:
        raise VersionConflict(current.resource_type, current.resource_id, expected, current.version_id)


def type_of(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource("Missing resourceType", ("resourceType",))
    return resource_type


def type_and_id(resource: Mapping[str, Any]) -> tuple[str, str]:
    resource_type = type_of(resource)
    resource_id = resource.get("id")
    if not isinstance(resource_id, str) or not resource_id:
        raise InvalidResource(f"{resource_type}.id: missing", ("id",))
    return resource_type, resource_id
