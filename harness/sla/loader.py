"""Load the SLA catalogue (`scenarios/slas.yaml`), or fail with one line naming the file, line and field.

The default catalogue is the repository's `scenarios/slas.yaml` (`EHRLAB_SLAS` names another one);
it is loaded once per process. A bad catalogue is a `CatalogueError` (exit code 2 like any input error).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import HarnessError
from harness.sla.catalogue import Catalogue

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "scenarios" / "slas.yaml"
Loc = tuple[str | int, ...]


class CatalogueError(HarnessError):
    """The SLA catalogue is malformed: names the file, the line when known, and the field."""

    def __init__(self, file: Path | str, message: str, *, line: int | None = None, field: str | None = None):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = self.file if line is None else f"{self.file}:{line}"
        super().__init__(f"{where}: " + (f"field '{field}': " if field else "") + message)


def _field(data: Any, loc: Loc) -> tuple[Loc, str]:
    """The part of pydantic's location present in the data, and a readable name with the entry's id."""
    path: list[str | int] = []
    text = ""
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
            text += f"[{part}]" + (f" ({node['id']})" if isinstance(node, dict) and "id" in node else "")
        elif isinstance(node, dict) and isinstance(part, str):
            key = "for" if part == "for_" else part
            path.append(key)
            text += f".{key}" if text else key
            if key not in node:
                break
            node = node[key]
        else:
            break
    return tuple(path), text or "(top level)"


def load_catalogue(path: Path | str) -> Catalogue:
    """Read with the scenario loader's bounded reader (a regular file of at most 1 MiB, nesting and aliases
    bounded, duplicate keys refused): `EHRLAB_SLAS` can name any file, so the catalogue is input like a scenario."""
    from harness.errors import ScenarioError
    from harness.scenario.loader import read_yaml

    path = Path(path)
    try:
        doc = read_yaml(path, "the SLA catalogue (version, evaluation, bands, rules ...)")
    except ScenarioError as exc:
        problem = exc.message
        if problem.startswith("invalid YAML: "):
            problem = "not valid YAML: " + problem.removeprefix("invalid YAML: ")
        elif exc.line is None and exc.field is None:
            problem = f"cannot read the SLA catalogue: {problem}"
        raise CatalogueError(path, problem, line=exc.line, field=exc.field) from None
    if doc.problems:
        first = doc.problems[0]
        raise CatalogueError(path, first.message, line=first.line, field=first.field)
    data, lines = doc.data, doc.lines
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc, name = _field(data, tuple(error["loc"]))
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "missing field"
        more = len(exc.errors()) - 1
        raise CatalogueError(path, message + (f" (and {more} more error(s))" if more else ""), line=line,
                             field=name) from None


@functools.cache
def default_catalogue() -> Catalogue:
    return load_catalogue(os.environ.get("EHRLAB_SLAS") or DEFAULT_PATH)
