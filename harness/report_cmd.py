"""`ehrlab report REPORT_DIR`: re-render every derived file of an existing run (report.html, allure-results/,
incident.md, junit.xml, summary.md) from its summary.json and journal.jsonl, the run's source of truth.

Exit 0 when rendered; a missing or malformed directory is a UsageError (exit 2, one line on stderr).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.errors import UsageError
from harness.journal import Event, parse_line
from harness.report.derived import ReportInputError
from harness.report.models import RunSummary
from harness.report.writers import DERIVED, write_derived


def _first_line(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


def load_run(directory: Path) -> tuple[RunSummary, list[Event]]:
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a report directory (no such directory)")
    summary_path, journal_path = directory / "summary.json", directory / "journal.jsonl"
    for path in (summary_path, journal_path):
        if not path.is_file():
            raise UsageError(f"{directory}: not a report directory ({path.name} is missing)")
    try:
        summary = RunSummary.model_validate_json(summary_path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as exc:
        raise UsageError(f"{summary_path}: malformed summary ({_first_line(exc)})") from exc
    events: list[Event] = []
    try:
        lines = journal_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{journal_path}: malformed journal ({_first_line(exc)})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_line(line))
        except ValidationError as exc:
            raise UsageError(f"{journal_path}:{number}: malformed journal event ({_first_line(exc)})") from exc
    return summary, events


def run(directory: Path) -> int:
    summary, events = load_run(directory)
    try:
        write_derived(directory, summary, events)
    except ReportInputError as exc:
        raise UsageError(f"{directory}: {exc}") from exc
    print(f"re-rendered {', '.join(DERIVED)} in {directory}")
    return 0
