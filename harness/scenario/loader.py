"""Load a scenario file into a `Scenario`, or fail with one line naming the file, line and field.

YAML is composed into nodes first so every value keeps its line; pydantic's error location is then
walked back through the data to the node it came from. Duplicate keys, which PyYAML silently
accepts, are errors here: in a scenario they are always a mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from harness.errors import ScenarioError
from harness.scenario.model import Scenario

Loc = tuple[str | int, ...]


class _Constructor(yaml.constructor.SafeConstructor):
    pass


def _to_python(node: yaml.Node, path: Loc, lines: dict[Loc, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _Constructor().construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise ScenarioError(file, "mapping keys must be plain scalars", line=key_node.start_mark.line + 1)
            if key in result:
                raise ScenarioError(
                    file, f"duplicate key {key!r}", line=key_node.start_mark.line + 1,
                    field=_field_name((*path, str(key))),
                )
            result[key] = _to_python(value_node, (*path, str(key)), lines, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _Constructor().construct_object(node, deep=True)


def _field_name(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _data_path(data: Any, loc: tuple[str | int, ...]) -> Loc:
    """The part of pydantic's location that exists in the data (drops union tags and the like)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in (node.get("kind"), node.get("check"), node.get("action")):
            continue  # a discriminated union's tag, not a key of the data
        elif isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key: name it, then stop
            break
        else:
            break
    return tuple(path)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        return f"unknown {discriminator} {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    if kind == "union_tag_not_found":
        return f"missing {str(ctx.get('discriminator', '')).strip(chr(39))}"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind.endswith(("_type", "_parsing")) and not isinstance(error.get("input"), dict | list):
        message += f" (got {error.get('input')!r})"
    return message


def _first_error(file: str, data: Any, exc: ValidationError, lines: dict[Loc, int]) -> ScenarioError:
    errors = exc.errors()
    error = errors[0]
    loc = tuple(error["loc"])
    path = _data_path(data, loc)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        path = (*path, discriminator) if discriminator else path
    line = None
    probe = path
    while line is None:
        line = lines.get(probe)
        if not probe:
            break
        probe = probe[:-1]
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ScenarioError(file, _message(error) + more, line=line, field=_field_name(path) if path else None)


def load_scenario(path: Path) -> Scenario:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(file, f"cannot read: {exc.__class__.__name__}") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError(file, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, f"invalid YAML: {exc}") from None
    if len(nodes) != 1 or nodes[0] is None:
        raise ScenarioError(file, "expected exactly one YAML document" if nodes else "the file is empty")
    lines: dict[Loc, int] = {}
    try:
        data = _to_python(nodes[0], (), lines, file)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ScenarioError(file, f"invalid YAML: {exc.problem}", line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ScenarioError(file, "a scenario must be a mapping (name, description, workload, ...)", line=1)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _first_error(file, data, exc, lines) from None


def scenario_files(paths: list[Path]) -> list[Path]:
    """Expand directories into their `*.yaml`/`*.yml` files, sorted; keep files as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            files.extend(p for p in found if p.name != "slas.yaml")
        else:
            files.append(path)
    return files
