"""docs/events.md is the journal's event models, rendered: it fails here when a model changes and the page was not
regenerated; `ehrlab events [KIND]` prints it."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from harness.cli import main
from harness.journal import FaultStarted
from harness.journal.reference import REGENERATE, find, kinds, render, section, type_text
from harness.journal.store import EVENT_FIELDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_committed_page_is_the_models() -> None:
    expected = render()
    committed = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
    if committed != expected:
        lines = difflib.unified_diff(committed.splitlines(keepends=True), expected.splitlines(keepends=True),
                                     "docs/events.md (committed)", "the models now")
        diff = "".join(list(lines)[:40])
        pytest.fail(f"docs/events.md differs from the journal's event models; regenerate it with\n    {REGENERATE}\n"
                    f"(run from the repository root) and commit it. First differences:\n{diff}")


def test_every_kind_has_a_section_with_every_field() -> None:
    page = render()
    assert sorted(kinds()) == sorted(EVENT_FIELDS)
    for kind, fields in EVENT_FIELDS.items():
        entry = find(kind)
        assert entry is not None, kind
        text = section(entry)
        assert text in page
        assert f"`{kind}`" in text.splitlines()[0]
        for field in fields:
            assert f"| `{field}` | `" in text, (kind, field)
    fault = find("fault.start")
    assert fault is not None
    assert fault.model is FaultStarted


def test_descriptions_come_from_the_code() -> None:
    page = render()
    # a field's trailing comment is its description when it has no Field(description=...)
    assert "| `background` | `bool` | `False` | a condition of the whole run, not an incident" in page
    # the model's own docstring, not its parent's
    operation = page.split("### `operation`\n")[1].split("###")[0]
    assert "One workload operation finished (`t` is its end)" in operation
    scenario_start = page.split("### `scenario.start`\n")[1].split("###")[0]
    assert "One journal event" not in scenario_start
    assert "| `t` | `float` | required |" in page.split("## Kinds")[0]  # the fields every event has, once


def test_types_read_as_the_code_writes_them() -> None:
    from typing import Literal

    assert type_text(int | None) == "int | None"
    assert type_text(dict[str, str | int | None]) == "dict[str, str | int | None]"
    assert type_text(Literal["start", "stop"]) == '"start" | "stop"'
    assert type_text(list[float]) == "list[float]"
    assert type_text(tuple[str, ...]) == "tuple[str, ...]"


def test_events_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events"]) == 0
    assert capsys.readouterr().out == render()
    assert main(["events", "fault.start"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### `fault.start`\n")
    assert "| `fault_id` | `str` | required |" in out
    assert "### `fault.stop`" not in out
    assert main(["events", "job.failed"]) == 0  # a kind that shares its model with others
    assert "`job.failed`" in capsys.readouterr().out.splitlines()[0]
    assert main(["events", "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == kinds()
    assert main(["events", "fault.strat"]) == 2
    err = capsys.readouterr().err
    assert "unknown event kind 'fault.strat': did you mean fault.start" in err
    assert "Traceback" not in err
