"""Find, validate and select scenario files: the shared front half of `ehrlab run`, `validate` and `list`.

Every file is loaded (validated) before anything runs, so one bad file stops the run with exit 2 before a
single simulator starts; every problem of every file is reported at once, each naming file, line and field.
`--only TAG` keeps scenarios carrying any of the given tags; `--skip TAG` drops those carrying any of them
(skip wins over only), like pytest's `-m` or Chaos Toolkit's `--hypothesis-*` selection; selecting nothing is a
usage error, not a silent green run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ScenarioError, ScenarioErrors, UsageError
from harness.scenario.loader import load_scenario, one_or_all, scenario_files
from harness.scenario.model import Scenario


@dataclass
class Validation:
    """What loading a set of files found: the scenarios that loaded, and every problem of the others (by file,
    in file order)."""

    loaded: list[tuple[Path, Scenario]] = field(default_factory=list)
    problems: dict[Path, list[ScenarioError]] = field(default_factory=dict)

    def all_problems(self) -> list[ScenarioError]:
        return [p for found in self.problems.values() for p in found]


def validate_files(paths: Sequence[Path]) -> Validation:
    """Load every scenario file under `paths`, keeping every problem of each (a missing path or no file at all
    is a `UsageError`)."""
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    files = scenario_files(list(paths))
    if not files:
        raise UsageError(f"no scenario files (*.yaml) in {', '.join(str(p) for p in paths)}")
    result = Validation()
    for file in files:
        try:
            result.loaded.append((file, load_scenario(file)))
        except ScenarioErrors as exc:
            result.problems[file] = list(exc.errors)
        except ScenarioError as exc:
            result.problems[file] = [exc]
    return result


def _unique_names(loaded: Sequence[tuple[Path, Scenario]]) -> None:
    seen: dict[str, Path] = {}
    for file, scenario in loaded:
        if scenario.name in seen:
            raise UsageError(f"{file}: scenario name {scenario.name!r} is already used by {seen[scenario.name]}")
        seen[scenario.name] = file


def load_all(paths: Sequence[Path]) -> list[tuple[Path, Scenario]]:
    """Every scenario under `paths`, or every problem of every file raised at once (`ScenarioError(s)`)."""
    result = validate_files(paths)
    if result.problems:
        raise one_or_all(result.all_problems())
    _unique_names(result.loaded)
    return result.loaded


def validate_command(paths: Sequence[Path]) -> int:
    """`ehrlab validate`: a line per valid file (stdout), a line per problem of each invalid one (stderr, file,
    line and field), then exit 0 when every file is valid, else 2. Nothing runs."""
    result = validate_files(paths)
    for file, scenario in result.loaded:
        print(f"ok  {file.as_posix()}  ({scenario.name}: {len(scenario.workload)} workload, {len(scenario.faults)} "
              f"fault(s), {len(scenario.steps)} step(s), {len(scenario.expectations)} check(s))")
    problems = result.all_problems()
    for problem in problems:
        print(f"ehrlab: error: {problem.one_line()}", file=sys.stderr)
    if not problems:
        try:
            _unique_names(result.loaded)
        except UsageError as exc:
            print(f"ehrlab: error: {exc}", file=sys.stderr)
            return UsageError.exit_code
        print(f"{len(result.loaded)} scenario file(s) valid")
        return 0
    total = len(result.loaded) + len(result.problems)
    print(f"ehrlab: {len(result.problems)} of {total} scenario file(s) invalid ({len(problems)} "
          f"error{'s' if len(problems) != 1 else ''})", file=sys.stderr)
    return ScenarioError.exit_code


def select(loaded: Sequence[tuple[Path, Scenario]], only: Sequence[str] = (),
           skip: Sequence[str] = ()) -> list[tuple[Path, Scenario]]:
    known = {tag for _, s in loaded for tag in s.tags}
    unknown = sorted({*only, *skip} - known)
    if unknown:
        raise UsageError(f"no scenario is tagged {', '.join(unknown)} (tags: {', '.join(sorted(known)) or 'none'})")
    chosen = [(f, s) for f, s in loaded
              if (not only or set(only) & set(s.tags)) and not set(skip) & set(s.tags)]
    if not chosen:
        raise UsageError("the tag selection leaves no scenario to run")
    return chosen


def describe(file: Path, scenario: Scenario) -> str:
    """One line for `ehrlab list`: name, duration, vendors, tags, file."""
    tags = ",".join(scenario.tags) or "-"
    return f"{scenario.name}\t{scenario.duration:g}s\t{','.join(scenario.vendors())}\t{tags}\t{file.as_posix()}"
