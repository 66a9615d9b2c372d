"""The lab's error tree. Every user-facing failure is one of these, mapped to an exit code in `cli`.

    HarnessError                 root; exit code 2 unless noted
    ├── UsageError               bad command line (unknown path, bad flag value)
    ├── ScenarioError            a scenario file that cannot be run: names file, line and field
    │   └── ScenarioErrors       several problems in one file, each a ScenarioError (`ehrlab validate` lists all)
    └── LabError                 the lab could not be built or driven (exit 1: the run failed)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class HarnessError(Exception):
    """Root of the lab's errors."""

    exit_code = 2


class UsageError(HarnessError):
    """The command line asks for something impossible."""


class ScenarioError(HarnessError):
    """A scenario file is malformed or invalid."""

    def __init__(self, file: Path | str, message: str, *, line: int | None = None, field: str | None = None):
        self.file = str(file)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"


class ScenarioErrors(ScenarioError):
    """Every problem found in one file, each a `ScenarioError` in `errors` (file order). `file`, `line`, `field`
    and `message` are the first problem's; the text lists them all, one per line."""

    def __init__(self, errors: Sequence[ScenarioError]):
        if not errors:
            raise ValueError("ScenarioErrors needs at least one error")
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.file, first.message, line=first.line, field=first.field)

    def __str__(self) -> str:
        files = sorted({e.file for e in self.errors})
        head = f"{', '.join(files)}: {len(self.errors)} errors"
        return "\n".join([head, *(f"  {e.one_line()}" for e in self.errors)])


class LabError(HarnessError):
    """The lab itself failed (a simulator would not start, a fault could not be applied)."""

    exit_code = 1
