"""The journal's reference page (docs/events.md), generated from the event models themselves.

Every model of the `JournalEvent` union becomes one section: its kind(s), its docstring, and a table of its
fields with their types, defaults and descriptions. A field's description is its `Field(description=...)`,
else the comment on the line that declares it (`queue: str  # the queue's name`): the page says what the code
says, so `tests/harness/test_event_reference.py` fails when the committed page and the models differ.

Regenerate the page with either of:

    .venv/bin/python -m harness.journal.reference > docs/events.md
    .venv/bin/ehrlab events > docs/events.md

`ehrlab events KIND` prints one kind's section (`harness.journal.reference.section`).

The page is rendered by hand rather than with a schema-to-Markdown tool: those render JSON Schema (pydantic's
`model_json_schema`), which loses the line comments and the `kind` grouping, and would add a dependency.
"""

from __future__ import annotations

import difflib
import inspect
import io
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from harness.errors import UsageError
from harness.journal.base import Event
from harness.journal.store import JournalEvent

REGENERATE = ".venv/bin/python -m harness.journal.reference > docs/events.md"


@dataclass(frozen=True, slots=True)
class Kind:
    """One model of the union: the kinds it journals (a model may carry several) and the module it is in."""

    model: type[Event]
    kinds: tuple[str, ...]


def models() -> list[Kind]:
    """Every model of the journal's union, in the union's order, with its kinds."""
    found = []
    for model in get_args(get_args(JournalEvent)[0]):
        kinds = tuple(str(k) for k in get_args(model.model_fields["kind"].annotation))
        found.append(Kind(model, kinds))
    return found


def kinds() -> list[str]:
    return [kind for entry in models() for kind in entry.kinds]


def type_text(annotation: Any) -> str:
    """A field's type as the code writes it: `int | None`, `dict[str, str | int]`, `"a" | "b"` for a Literal."""
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in get_args(annotation))
    if origin is typing.Annotated:
        return type_text(get_args(annotation)[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_text(a) for a in get_args(annotation))}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment on each field's declaration (`name: type  # comment`), from the class's source."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    comments: dict[str, list[str]] = {}
    current: str | None = None
    at_start = True
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            at_start, current = True, None
            continue
        if token.type == tokenize.NL:
            continue
        if token.type == tokenize.COMMENT:
            if current is not None:
                comments.setdefault(current, []).append(token.string.lstrip("#").strip())
            continue
        if at_start and token.type == tokenize.NAME and token.start[1] == 4:
            current = token.string
        at_start = False
    return {name: " ".join(parts) for name, parts in comments.items()}


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "(computed)"
    return "null" if info.default is None else f"`{info.default!r}`" if info.default is not PydanticUndefined else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fields_table(model: type[BaseModel], skip: frozenset[str]) -> list[str]:
    comments = _field_comments(model)
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        description = info.description or comments.get(name, "")
        rows.append(f"| `{name}` | `{_cell(type_text(info.annotation))}` | {_cell(_default_text(info))} "
                    f"| {_cell(description)} |")
    return rows if len(rows) > 2 else ["(no fields of its own)"]


def _doc(model: type) -> str:
    doc = model.__dict__.get("__doc__")  # the class's own docstring, not an inherited one
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _base_fields() -> frozenset[str]:
    return frozenset(Event.model_fields) | {"kind"}


def section(entry: Kind) -> str:
    """One model's section: kinds as the heading, docstring, fields table."""
    heading = ", ".join(f"`{k}`" for k in entry.kinds)
    lines = [f"### {heading}", "", f"Model `{entry.model.__name__}` (`{entry.model.__module__}`)."]
    doc = _doc(entry.model)
    if doc:
        lines += ["", " ".join(doc.split())]
    lines += ["", *_fields_table(entry.model, _base_fields()), ""]
    return "\n".join(lines)


def find(kind: str) -> Kind | None:
    return next((entry for entry in models() if kind in entry.kinds), None)


def _module_title(module: str) -> str:
    doc = sys.modules[module].__doc__ or module
    return " ".join(doc.strip().split(". ")[0].split()).rstrip(".")


def render() -> str:
    """The whole page, deterministic (the models' and union's order; no dates)."""
    entries = models()
    lines = [
        "# Journal events",
        "",
        "<!-- Generated from the event models in harness/journal/; do not edit by hand. Regenerate with",
        f"     {REGENERATE}",
        "     (or `ehrlab events > docs/events.md`); tests/harness/test_event_reference.py checks it. -->",
        "",
        "Every run writes `journal.jsonl`: one JSON object per line, one event each, in the order they happened.",
        "Checks and reports read only this journal. `ehrlab events KIND` prints one kind's section; a check's",
        "`events.where` may name any field of its kind below.",
        "",
        "## Fields of every event",
        "",
        " ".join(_doc(Event).split()),
        "",
        *_fields_table(Event, frozenset()),
        "| `kind` | `str` | required | the event's kind: the headings below |",
        "",
        "## Kinds",
        "",
    ]
    modules: dict[str, list[Kind]] = {}
    for entry in entries:
        modules.setdefault(entry.model.__module__, []).append(entry)
    for module, group in modules.items():
        lines.append(f"- {_module_title(module)}: " + ", ".join(f"`{k}`" for e in group for k in e.kinds))
    lines.append("")
    for module, group in modules.items():
        lines += [f"## {_module_title(module)}", "", f"`{module}`", ""]
        lines += [section(entry) for entry in group]
    return "\n".join(lines).rstrip("\n") + "\n"


def add_parser(commands: Any) -> None:
    """`ehrlab events`'s arguments (`commands`: the CLI's subparsers)."""
    events = commands.add_parser("events", help="print the journal's event reference (docs/events.md), or one kind's")
    events.add_argument("kind", nargs="?", default=None, metavar="KIND", help="one event kind, e.g. fault.start")
    events.add_argument("--list", action="store_true", help="print the kinds only, one per line")


def command(kind: str | None = None, *, list_only: bool = False) -> int:
    """`ehrlab events [KIND] [--list]`: the whole page (Markdown, as docs/events.md), one kind's section, or the
    kinds; an unknown kind is a usage error (exit 2) naming the closest ones."""
    if list_only:
        print("\n".join(kinds()))
        return 0
    if kind is None:
        sys.stdout.write(render())
        return 0
    entry = find(kind)
    if entry is None:
        close = difflib.get_close_matches(kind, kinds(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"unknown event kind {kind!r}: {hint}(`ehrlab events --list` prints every kind)")
    sys.stdout.write(section(entry))
    return 0


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
