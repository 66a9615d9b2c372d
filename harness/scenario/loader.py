"""Load a scenario file into a `Scenario`, or fail naming the file, line and field of every problem in it.

YAML is composed into nodes first so every value keeps its line; pydantic's error locations are then
walked back through the data to the node each came from. Problems that whole-scenario validators find carry
their own location (`harness.scenario.issues`), so they point at the item they name, not at line 1.
Duplicate keys, which PyYAML silently accepts, are errors here: in a scenario they are always a mistake.
One problem raises `ScenarioError`; several raise `ScenarioErrors` listing each (file order).

`read_yaml` and `validation_errors` serve any YAML input the lab reads the same way (`ehrlab check`'s
expectations files).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.errors import ScenarioError, ScenarioErrors
from harness.scenario.issues import unpack
from harness.scenario.model import Scenario

Loc = tuple[str | int, ...]


class _Constructor(yaml.constructor.SafeConstructor):
    pass


@dataclass(frozen=True, slots=True)
class Source:
    """Where (part of) the validated data came from: a file, the line of each path in it, and the path in that
    file of the data's own root (`prefix`: an expectations file's `scenarios.NAME.expectations` list)."""

    file: str
    lines: Mapping[Loc, int]
    prefix: Loc = ()


def _to_python(node: yaml.Node, path: Loc, lines: dict[Loc, int], file: str,
               problems: list[ScenarioError]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _Constructor().construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                problems.append(ScenarioError(file, "mapping keys must be plain scalars",
                                              line=key_node.start_mark.line + 1, field=_field_name(path) or None))
                continue
            if key in result:
                problems.append(ScenarioError(file, f"duplicate key {key!r}", line=key_node.start_mark.line + 1,
                                              field=_field_name((*path, str(key)))))
                continue  # the first value stays; the rest of the file is still checked
            result[key] = _to_python(value_node, (*path, str(key)), lines, file, problems)
            lines[(*path, str(key))] = key_node.start_mark.line + 1  # a key's line, where its value may start below
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines, file, problems) for i, item in enumerate(node.value)]
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
    return message


def _got(error: ErrorDetails) -> str:
    wrong_type = error["type"].endswith(("_type", "_parsing")) and not isinstance(error.get("input"), dict | list)
    return f" (got {error.get('input')!r})" if wrong_type else ""


def _merge(messages: list[str]) -> str:
    """One message for the problems of one place: a value no member of a union accepts reads as one sentence."""
    unique = list(dict.fromkeys(messages))
    lead = "Input should be "
    if len(unique) > 1 and all(m.startswith(lead) for m in unique):
        return lead + " or ".join(m[len(lead):] for m in unique)
    return "; ".join(unique)


def _source_of(path: Loc, sources: Mapping[Loc, Source]) -> tuple[Source, Loc]:
    """The source holding `path` (the longest matching root) and the path inside that source's file."""
    root = max((r for r in sources if path[:len(r)] == r), key=len)
    source = sources[root]
    return source, (*source.prefix, *path[len(root):])


def _line(lines: Mapping[Loc, int], path: Loc) -> int | None:
    probe = path
    while True:
        line = lines.get(probe)
        if line is not None or not probe:
            return line
        probe = probe[:-1]


def validation_errors(data: Any, exc: ValidationError, sources: Mapping[Loc, Source]) -> list[ScenarioError]:
    """Every problem of a failed validation, each placed at its file, line and field (file order; problems
    of one place merged into one line). `sources` maps data paths to the file they came from; it needs ()."""
    places: dict[Loc, list[str]] = {}
    for error in exc.errors():
        path = _data_path(data, tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
            path = (*path, discriminator) if discriminator else path
        found = unpack(error["ctx"]["error"]) if error["type"] == "value_error" and "ctx" in error else None
        if found is not None:  # a whole-model validator's problems, each with its path below the model
            for problem in found:
                places.setdefault(_data_path(data, (*path, *problem.path)), []).append(problem.message)
            continue
        places.setdefault(path, []).append(_message(error) + _got(error))
    problems = []
    for path, messages in places.items():
        source, in_file = _source_of(path, sources)
        problems.append(ScenarioError(source.file, _merge(messages), line=_line(source.lines, in_file),
                                      field=_field_name(in_file) if in_file else None))
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def one_or_all(problems: list[ScenarioError]) -> ScenarioError:
    """The error to raise for a non-empty list of problems: the problem itself when alone."""
    return problems[0] if len(problems) == 1 else ScenarioErrors(problems)


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A YAML file's one mapping, the line of every path in it, and the problems found reading it that do not
    stop validation (duplicate keys: the first value is kept)."""

    file: str
    data: dict[str, Any]
    lines: dict[Loc, int]
    problems: list[ScenarioError]


def read_yaml(path: Path, what: str = "a scenario") -> YamlDoc:
    """A YAML file holding one mapping; a problem that leaves nothing to validate is raised (`ScenarioError`)."""
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
    problems: list[ScenarioError] = []
    try:
        data = _to_python(nodes[0], (), lines, file, problems)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ScenarioError(file, f"invalid YAML: {exc.problem}", line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ScenarioError(file, f"{what} must be a mapping", line=1)
    return YamlDoc(file, data, lines, problems)


def validate(model: type[BaseModel], data: Any, sources: Mapping[Loc, Source],
             problems: Sequence[ScenarioError] = ()) -> Any:
    """`model` validated from `data`, or every problem (`problems` found before, then the validation's) raised
    at once: `ScenarioError` for one, `ScenarioErrors` for several."""
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        found = [*problems, *validation_errors(data, exc, sources)]
        raise one_or_all(sorted(found, key=lambda p: (p.file, p.line or 0))) from None
    if problems:
        raise one_or_all(list(problems))
    return validated


def load_scenario(path: Path) -> Scenario:
    doc = read_yaml(path, "a scenario (name, description, workload, ...)")
    scenario: Scenario = validate(Scenario, doc.data, {(): Source(doc.file, doc.lines)}, doc.problems)
    return scenario


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
