"""Find, validate and select scenario files: the shared front half of `ehrlab run`, `validate` and `list`.

Every file is loaded (validated) before anything runs, so one bad file stops the run with exit 2 before a
single simulator starts. `--only TAG` keeps scenarios carrying any of the given tags; `--skip TAG` drops
those carrying any of them (skip wins over only), like pytest's `-m` or Chaos Toolkit's `--hypothesis-*`
selection; selecting nothing is a usage error, not a silent green run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import UsageError
from harness.scenario.loader import load_scenario, scenario_files
from harness.scenario.model import Scenario


def load_all(paths: Sequence[Path]) -> list[tuple[Path, Scenario]]:
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    files = scenario_files(list(paths))
    if not files:
        raise UsageError(f"no scenario files (*.yaml) in {', '.join(str(p) for p in paths)}")
    loaded = [(f, load_scenario(f)) for f in files]
    seen: dict[str, Path] = {}
    for file, scenario in loaded:
        if scenario.name in seen:
            raise UsageError(f"{file}: scenario name {scenario.name!r} is already used by {seen[scenario.name]}")
        seen[scenario.name] = file
    return loaded


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
