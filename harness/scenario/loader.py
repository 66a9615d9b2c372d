"""Load a scenario file into a `Scenario`, or fail naming the file, line and field of every problem in it.

YAML is composed into nodes first so every value keeps its line; pydantic's error locations are then
walked back through the data to the node each came from. Problems that whole-scenario validators find carry
their own location (`harness.scenario.issues`), so they point at the item they name, not at line 1.
Duplicate keys, which PyYAML silently accepts, are errors here: in a scenario they are always a mistake.
One problem raises `ScenarioError`; several raise `ScenarioErrors` listing each (file order).

`read_yaml` and `validation_errors` serve any YAML input the lab reads the same way (`ehrlab check`'s
expectations files).

Reading is bounded in time, memory and depth, whatever the file holds (each refusal one `ScenarioError`,
exit 2): only a regular file is read (a FIFO, a device or a directory named `x.yaml` is refused before it is
opened for reading, so it cannot hang the lab), of at most `MAX_FILE_BYTES` (1 MiB); its values nest at most
`MAX_DEPTH` (32) levels deep; and it holds at most `MAX_VALUES` (100,000) values once YAML aliases are
expanded, so a "billion laughs" file (aliases of aliases, 1 KB growing to gigabytes) or an alias that
contains itself (`x: &x [1, *x]`) is refused, not expanded. A value YAML cannot construct (a 5,000-digit
integer, the date 2001-13-45) is refused at its line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.errors import ScenarioError, ScenarioErrors
from harness.scenario.issues import unpack
from harness.scenario.model import Scenario

Loc = tuple[str | int, ...]

#: Largest file the lab reads as a scenario or an expectations file (the library's are under 10 KB).
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists (a scenario needs about 6 levels).
MAX_DEPTH = 32
#: Most values (mappings, lists, scalars) a file may hold, counted with YAML aliases expanded.
MAX_VALUES = 100_000


class _Constructor(yaml.constructor.SafeConstructor):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most MAX_VALUES nodes at most MAX_DEPTH deep: past either it stops
    at once, before PyYAML's own recursion (a RecursionError at about 1,000 levels) or its memory run away."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH + 1:  # the document's root is level 0
                raise _too_deep(self.file, self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
            if self.nodes > MAX_VALUES:
                raise _too_many(self.file, self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _too_deep(file: str, line: int) -> ScenarioError:
    return ScenarioError(file, f"nested more than {MAX_DEPTH} levels deep (the lab's limit)", line=line)


def _too_many(file: str, line: int) -> ScenarioError:
    return ScenarioError(file, f"more than {MAX_VALUES:,} values (the lab's limit; YAML aliases count each time "
                               "they are used)", line=line)


@dataclass
class _Budget:
    """What expanding the composed nodes may still spend: values left, and the nodes being expanded (an alias
    that contains itself would expand forever)."""

    values: int = MAX_VALUES
    open: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Source:
    """Where (part of) the validated data came from: a file, the line of each path in it, and the path in that
    file of the data's own root (`prefix`: an expectations file's `scenarios.NAME.expectations` list)."""

    file: str
    lines: Mapping[Loc, int]
    prefix: Loc = ()


def _to_python(node: yaml.Node, path: Loc, lines: dict[Loc, int], file: str, problems: list[ScenarioError],
               budget: _Budget) -> Any:
    line = lines[path] = node.start_mark.line + 1
    budget.values -= 1
    if budget.values < 0:
        raise _too_many(file, line)
    if len(path) > MAX_DEPTH:
        raise _too_deep(file, line)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in budget.open:  # ids of live nodes, only to find a cycle: nothing reaches the journal
            raise ScenarioError(file, "a YAML alias refers to a value that contains it (it would never end)",
                                line=line, field=_field_name(path) if path else None)
        budget.open.add(id(node))
        try:
            return _collection(node, path, lines, file, problems, budget)
        finally:
            budget.open.discard(id(node))
    return _scalar(node, file)


def _scalar(node: yaml.Node, file: str) -> Any:
    try:
        return _Constructor().construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:  # int("1" * 5000), date(2001, 13, 45): not YAML errors in PyYAML
        text = str(exc)
        why = "a number too long to read (over 4300 digits)" if "integer string conversion" in text else text[:100]
        raise ScenarioError(file, f"invalid value: {why}", line=node.start_mark.line + 1) from None


def _collection(node: yaml.MappingNode | yaml.SequenceNode, path: Loc, lines: dict[Loc, int], file: str,
                problems: list[ScenarioError], budget: _Budget) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, file) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool):
                problems.append(ScenarioError(file, "mapping keys must be plain scalars",
                                              line=key_node.start_mark.line + 1, field=_field_name(path) or None))
                continue
            if key in result:
                problems.append(ScenarioError(file, f"duplicate key {key!r}", line=key_node.start_mark.line + 1,
                                              field=_field_name((*path, str(key)))))
                continue  # the first value stays; the rest of the file is still checked
            result[key] = _to_python(value_node, (*path, str(key)), lines, file, problems, budget)
            lines[(*path, str(key))] = key_node.start_mark.line + 1  # a key's line, where its value may start below
        return result
    return [_to_python(item, (*path, i), lines, file, problems, budget) for i, item in enumerate(node.value)]


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
        elif isinstance(node, dict) and (part in (node.get("kind"), node.get("check"), node.get("action"))
                                         or part in ("vendor stream", "sut stream")):  # scenario.model.STREAM_TAGS
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
    text = _read_text(path, file)
    try:
        nodes = _compose_all(text, file)
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
        data = _to_python(nodes[0], (), lines, file, problems, _Budget())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ScenarioError(file, f"invalid YAML: {exc.problem}", line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ScenarioError(file, f"{what} must be a mapping", line=1)
    return YamlDoc(file, data, lines, problems)


def _read_text(path: Path, file: str) -> str:
    """The file's text: a regular file (checked before it is opened, and again once open) of at most
    MAX_FILE_BYTES, in UTF-8."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ScenarioError(file, "not a regular file (a directory, a FIFO or a device): the lab reads only files")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if not stat.S_ISREG(opened.st_mode):  # replaced between the two looks
                raise ScenarioError(file, "not a regular file: the lab reads only files")
            if opened.st_size > MAX_FILE_BYTES:
                raise ScenarioError(file, f"{opened.st_size:,} bytes, more than the lab's limit of "
                                          f"{MAX_FILE_BYTES:,} (1 MiB)")
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # grew after the look
            raise ScenarioError(file, f"more than the lab's limit of {MAX_FILE_BYTES:,} bytes (1 MiB)")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(file, f"cannot read: {exc.__class__.__name__}") from None


def _compose_all(text: str, file: str) -> list[yaml.Node | None]:
    """`yaml.compose_all`, bounded (`_BoundedLoader`)."""
    loader = _BoundedLoader(text, file)
    try:
        nodes: list[yaml.Node | None] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


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
