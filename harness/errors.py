"""The lab's error tree. Every user-facing failure is one of these, mapped to an exit code in `cli`.

    HarnessError                 root; exit code 2 (bad input) unless noted
    ├── UsageError               bad command line (unknown path, bad flag value)
    ├── ScenarioError            a scenario file that cannot be run: names file, line and field
    │   └── ScenarioErrors       several problems in one file, each a ScenarioError (`ehrlab validate` lists all)
    └── LabError                 the lab could not judge (exit 3, INCONCLUSIVE): it could not be built or
        │                        driven, so a verdict on the system under test would describe a run that
        │                        did not happen (a simulator or proxy that would not start, a step the lab
        │                        could not carry out)
        └── FaultInjectionError  a scenario fault could not be started or stopped

Exit codes of `ehrlab run` (and `replay`, `load`): `EXIT_PASS` 0 every check passed; `EXIT_FAIL` 1 a check
failed; `EXIT_USAGE` 2 bad input (nothing was run); `EXIT_INCONCLUSIVE` 3 the lab could not judge (a fault it
could not inject, its own lateness past the scenario's tolerance in real mode, a system under test that did
not start); `EXIT_ABORTED` 130 interrupted (Ctrl-C, SIGTERM), with what had happened written down.
A run inside one scenario turns a `LabError` into that scenario's INCONCLUSIVE verdict (`harness.runner`);
the exit code is the run's verdict (`harness.report.models.run_verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_ABORTED = 130  # 128 + SIGINT, the shell's convention for Ctrl-C (SIGTERM too: the run was stopped)


class HarnessError(Exception):
    """Root of the lab's errors."""

    exit_code = EXIT_USAGE


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
    """The lab itself failed (a simulator would not start, a step could not be carried out): it cannot judge."""

    exit_code = EXIT_INCONCLUSIVE


class FaultInjectionError(LabError):
    """A scenario fault could not be started or stopped: the run would not be the one the scenario describes."""
