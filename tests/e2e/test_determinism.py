"""Same scenario and seed in two processes with different hash seeds: byte-identical journals.

The first test pins one scenario in detail (and that a different seed gives a different run). The second
runs every scenario of the library (`scenarios/*.yaml`) and every scenario file under `tests/` (found by
globbing: whatever loads as a scenario) in two `ehrlab run` processes at once, one with
`PYTHONHASHSEED=1` and one with `PYTHONHASHSEED=4242`, and compares their journals scenario by scenario:
nothing that reaches the journal may depend on set or dict iteration order, object ids or wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario.select import validate_files
from tests.e2e.helpers import REPO, ehrlab

OUTAGE = "scenarios/medplum-outage.yaml"
HASH_SEEDS = ("1", "4242")


def journal(tmp_path: Path, name: str, seed: str, hashseed: str) -> bytes:
    result = ehrlab("run", OUTAGE, "--seed", seed, "--quiet", report_dir=tmp_path / name,
                    env={"PYTHONHASHSEED": hashseed})
    assert result.code == 0, result.stdout + result.stderr
    assert result.report is not None
    return (result.report / "journal.jsonl").read_bytes()


def test_same_seed_same_bytes_different_seed_different_run(tmp_path: Path) -> None:
    first = journal(tmp_path, "a", "11", "1")
    second = journal(tmp_path, "b", "11", "2")
    other = journal(tmp_path, "c", "12", "1")
    assert first == second
    assert len(first.splitlines()) > 500
    assert other != first
    # the workload is Poisson, so a different seed moves the arrivals themselves
    first_ops = [line for line in first.splitlines() if b'"kind":"operation"' in line]
    other_ops = [line for line in other.splitlines() if b'"kind":"operation"' in line]
    assert first_ops[:3] != other_ops[:3]


def every_scenario_file() -> list[Path]:
    """The library (which must load whole) and every YAML file under tests/ that loads as a scenario."""
    library = validate_files([REPO / "scenarios"])
    assert not library.problems, library.all_problems()
    assert len(library.loaded) >= 10
    in_tests = validate_files(sorted({*REPO.glob("tests/**/*.yaml"), *REPO.glob("tests/**/*.yml")}))
    assert in_tests.loaded, "no scenario file found under tests/"
    return [file.relative_to(REPO) for file, _ in [*library.loaded, *in_tests.loaded]]


def by_scenario(journal: bytes) -> dict[str, list[bytes]]:
    """The concatenated journal of a multi-scenario run, split at each `scenario.start` into its scenario's lines."""
    split: dict[str, list[bytes]] = {}
    lines: list[bytes] = []
    for line in journal.splitlines():
        if b'"kind":"scenario.start"' in line:
            name = json.loads(line)["scenario"]
            assert name not in split, f"scenario {name} started twice"
            lines = split[name] = []
        lines.append(line)
    return split


def first_difference(name: str, a: list[bytes], b: list[bytes]) -> str:
    for number, (left, right) in enumerate(zip(a, b, strict=False), start=1):
        if left != right:
            return (f"scenario {name}: journals differ at its line {number}:\n"
                    f"  PYTHONHASHSEED={HASH_SEEDS[0]}: {left[:400].decode()}\n"
                    f"  PYTHONHASHSEED={HASH_SEEDS[1]}: {right[:400].decode()}")
    return f"scenario {name}: one journal stops after {min(len(a), len(b))} lines, the other has {max(len(a), len(b))}"


@pytest.mark.slow
def test_every_scenario_gives_the_same_journal_whatever_the_hash_seed(tmp_path: Path) -> None:
    files = every_scenario_file()
    procs = {}
    for hashseed in HASH_SEEDS:
        out = tmp_path / f"hashseed-{hashseed}"
        procs[hashseed] = (out, subprocess.Popen(  # both at once: the two processes share the wall time
            [sys.executable, "-m", "harness.cli", "run", *map(str, files), "--quiet", "--report-dir", str(out)],
            cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hashseed}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    journals: dict[str, dict[str, list[bytes]]] = {}
    for hashseed, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode in (0, 1), f"PYTHONHASHSEED={hashseed}: exit {proc.returncode}\n{stdout}\n{stderr}"
        journals[hashseed] = by_scenario((out / "latest" / "journal.jsonl").resolve().read_bytes())
    first, second = (journals[h] for h in HASH_SEEDS)
    assert len(first) == len(files), sorted(first)
    assert list(first) == list(second)
    differing = [first_difference(name, first[name], second[name]) for name in first if first[name] != second[name]]
    assert not differing, f"{len(differing)} of {len(first)} scenarios:\n" + "\n".join(differing)
    assert all(len(lines) > 20 for lines in first.values())
