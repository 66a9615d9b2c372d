"""Stored resources as JSON, encoded once per version: the bytes a read, a search page or a Bundle sends.

A stored resource object is never changed (a write stores a new object: `simulators.fhir.store`), so
its encoding stays right for as long as the object lives. `JsonCache` keeps, per stored object, its
compact JSON and its searchset entry (`{"fullUrl":...,"resource":...,"search":{"mode":"match"}}` for the
last base URL it was listed under), keyed by `id()` with the object itself held (so the id cannot be
reused while cached). The store tells it which objects it holds (`is_current`: only current versions
are cached) and drops an object's bytes when a new version replaces it (`forget`), so the cache holds
at most one entry per resource.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable, Mapping
from typing import Any

from simulators.fhir.outcome import dump_json

_encode_string = json.encoder.encode_basestring  # the C encoder's string escaper (ensure_ascii=False)
MATCH_TAIL = b',"search":{"mode":"match"}}'


def match_entry(full_url: str, resource_json: bytes) -> bytes:
    """`dump_json({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})`, with the
    resource already encoded."""
    return b'{"fullUrl":' + _encode_string(full_url).encode() + b',"resource":' + resource_json + MATCH_TAIL


class JsonCache:
    """Encoded JSON of the current versions of a store's resources (see the module docstring)."""

    def __init__(self, is_current: Callable[[Mapping[str, Any]], bool]) -> None:
        self._is_current = is_current
        self._resources: dict[int, tuple[Mapping[str, Any], bytes]] = {}
        self._entries: dict[int, tuple[Mapping[str, Any], str, bytes]] = {}

    def resource(self, resource: Mapping[str, Any]) -> bytes:
        """`dump_json(resource)`, remembered for a stored current version."""
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        encoded = dump_json(resource)
        if self._is_current(resource):
            self._resources[id(resource)] = (resource, encoded)
        return encoded

    def match(self, full_url: str, resource: Mapping[str, Any]) -> bytes:
        """`match_entry(full_url, ...)` of `resource`, remembered for a stored current version."""
        cached = self._entries.get(id(resource))
        if cached is not None and cached[0] is resource and cached[1] == full_url:
            return cached[2]
        encoded = match_entry(full_url, self.resource(resource))
        if self._is_current(resource):
            self._entries[id(resource)] = (resource, full_url, encoded)
        return encoded

    def forget(self, resource: Mapping[str, Any]) -> None:
        """`resource` is no longer current (a new version, or a change in place)."""
        self._resources.pop(id(resource), None)
        self._entries.pop(id(resource), None)

    def clear(self) -> None:
        self._resources.clear()
        self._entries.clear()
