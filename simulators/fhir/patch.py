"""JSON Patch (RFC 6902) for FHIR PATCH with `Content-Type: application/json-patch+json`.

Hand-written because the `jsonpatch` package is not installed in this project's environment (the
issue asks for it where available; see the report of issue 3). It is small and total: every malformed
document or failing operation is a `PatchError` (400/422 at the API), never an exception from inside.
Operations: add, remove, replace, move, copy, test, with JSON Pointers (RFC 6901, `~0` and `~1`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from simulators.errors import SimulatorError

#: Most operations one patch document may hold.
MAX_OPERATIONS = 1000


class PatchError(SimulatorError):
    """The patch document is malformed, or one of its operations cannot be applied."""


def _pointer(path: object) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError("a path must be a JSON Pointer such as /name/0/family")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]] if path else []


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"not an array index: {token[:32]}")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_add):
        raise PatchError("array index out of range")
    return index


def _parent(document: Any, parts: list[str]) -> tuple[Any, str]:
    if not parts:
        raise PatchError("the operation cannot target the whole resource")
    node = document
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError("path not found")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise PatchError("path not found")
    return node, parts[-1]


def _get(document: Any, parts: list[str]) -> Any:
    if not parts:
        return document
    parent, token = _parent(document, parts)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError("path not found")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, for_add=False)]
    raise PatchError("path not found")


def _add(document: Any, parts: list[str], value: Any) -> None:
    parent, token = _parent(document, parts)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, for_add=True), value)
    else:
        raise PatchError("path not found")


def _remove(document: Any, parts: list[str]) -> Any:
    parent, token = _parent(document, parts)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError("path not found")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, for_add=False))
    raise PatchError("path not found")


def apply_patch(document: Mapping[str, Any], operations: object) -> dict[str, Any]:
    """A patched deep copy of `document`; raises `PatchError` on any problem (the original is untouched)."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch document is an array of operations")
    if len(operations) > MAX_OPERATIONS:
        raise PatchError(f"at most {MAX_OPERATIONS} operations per patch")
    result: Any = copy.deepcopy(dict(document))
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise PatchError(f"operation {number}: must be an object")
        op = operation.get("op")
        try:
            parts = _pointer(operation.get("path"))
            if op in ("add", "replace", "test") and "value" not in operation:
                raise PatchError("missing value")
            if op == "add":
                _add(result, parts, copy.deepcopy(operation["value"]))
            elif op == "remove":
                _remove(result, parts)
            elif op == "replace":
                _remove(result, parts)
                _add(result, parts, copy.deepcopy(operation["value"]))
            elif op in ("move", "copy"):
                source = _pointer(operation.get("from"))
                if op == "move" and parts[:len(source)] == source and parts != source:
                    raise PatchError("cannot move a value into itself")
                value = _remove(result, source) if op == "move" else copy.deepcopy(_get(result, source))
                _add(result, parts, value)
            elif op == "test":
                if _get(result, parts) != operation["value"]:
                    raise PatchError("test failed")
            else:
                raise PatchError("unknown op (expected add, remove, replace, move, copy or test)")
        except PatchError as exc:
            raise PatchError(f"operation {number}: {exc}") from None
    if not isinstance(result, dict):
        raise PatchError("the patched resource is not an object")
    return result
