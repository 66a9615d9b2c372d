"""`ehrlab replay REPORT_DIR`: re-run a report's scenario files with the same seed and mode, write the new run
beside it (REPORT_DIR's parent, or `--report-dir`), and compare the two `journal.jsonl` byte for byte, one
scenario at a time.

The run is re-created from the report's own `replay` command (`summary.json`), parsed by `ehrlab run`'s
parser, so file selection, seed and time scale mean exactly what they meant at run time; only `--mode` and
`--report-dir` are overridden. Before anything runs, each scenario file must still exist and, when the report
recorded its SHA-256 (`ScenarioSummary.sha256`; older reports have none), be unchanged, unless `--force`.

Only a virtual run is deterministic. A real-mode report is re-run in virtual mode unless `--mode real` is
given, and its journal is not compared: real sockets and real time cannot give the same bytes twice.

Exit codes: the new run's own verdict (0 pass, 1 fail, 3 inconclusive, 130 aborted: `ehrlab run`'s) when the
journals match or were not comparable; 1 when they differ (the first differing line is printed); 2 for a
missing or malformed report directory, a scenario file that no longer exists, or one that changed since the run
(without `--force`). A report whose summary says `replay_identical: false` (a real-mode run) is never compared.
`--mode real` talks only to loopback unless `--allow-remote` (`harness.guard`): a remote `TOXIPROXY_URL` is
refused, exit 2, before anything is read or connected.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import guard
from harness.errors import UsageError
from harness.report.models import RunSummary, file_sha256
from harness.report_cmd import load_run

SHOWN_CHARS = 100  # how much of each differing line is printed, around the first differing character


@dataclass(frozen=True, slots=True)
class Section:
    """One scenario's lines of a journal.jsonl, and the 1-based line number of its first line in the file."""

    first_line: int
    lines: list[bytes]


@dataclass(frozen=True, slots=True)
class Difference:
    original_line: int  # 1-based, in the original journal.jsonl
    replay_line: int  # 1-based, in the new one
    original: bytes | None  # None: that journal ended first
    replay: bytes | None


def split_sections(data: bytes) -> list[Section]:
    """The journal's lines grouped per scenario (each starts at a `scenario.start` event)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    sections: list[Section] = []
    for number, line in enumerate(lines, start=1):
        try:
            starts = json.loads(line).get("kind") == "scenario.start"
        except (ValueError, AttributeError):
            starts = False
        if starts or not sections:
            sections.append(Section(number, []))
        sections[-1].lines.append(line)
    return sections


def first_difference(original: Section, replay: Section) -> Difference | None:
    for i in range(max(len(original.lines), len(replay.lines))):
        a = original.lines[i] if i < len(original.lines) else None
        b = replay.lines[i] if i < len(replay.lines) else None
        if a != b:
            return Difference(original.first_line + i, replay.first_line + i, a, b)
    return None


def excerpt(line: bytes | None, other: bytes | None) -> str:
    """The line around where it first differs from `other`, truncated to SHOWN_CHARS characters."""
    if line is None:
        return "<end of journal>"
    text, against = line.decode("utf-8", "replace"), (other or b"").decode("utf-8", "replace")
    at = next((i for i, (x, y) in enumerate(zip(text, against, strict=False)) if x != y), min(len(text), len(against)))
    start = max(0, at - SHOWN_CHARS // 3)
    shown = text[start:start + SHOWN_CHARS]
    return ("…" if start else "") + shown + ("…" if start + SHOWN_CHARS < len(text) else "")


def _note(text: str) -> None:
    print(f"ehrlab replay: {text}", file=sys.stderr, flush=True)


def check_scenario_files(summary: RunSummary, *, force: bool) -> None:
    for scenario in summary.scenarios:
        path = Path(scenario.file)
        if not path.is_file():
            raise UsageError(f"{scenario.file}: scenario file no longer exists (relative paths are resolved from "
                             f"the current directory, as at the run)")
        if scenario.sha256 is None:
            _note(f"{scenario.file}: this report has no checksum of the file (an older run); cannot tell whether "
                  f"it changed since")
            continue
        now = file_sha256(path)
        if now != scenario.sha256:
            message = (f"{scenario.file}: scenario file changed since the run (SHA-256 {scenario.sha256[:12]}… "
                       f"then, {now[:12]}… now)")
            if not force:
                raise UsageError(f"{message}; replaying it would not reproduce the run (--force to replay anyway)")
            _note(f"{message}; replaying anyway (--force): expect a mismatch")


def _run_args(summary: RunSummary, summary_path: Path, mode: str, out_dir: Path, quiet: bool) -> argparse.Namespace:
    from harness import cli  # cli imports this module lazily; import it back the same way

    try:
        tokens = shlex.split(summary.replay)
    except ValueError as exc:
        raise UsageError(f"{summary_path}: malformed replay command ({exc})") from exc
    if tokens[:2] != ["ehrlab", "run"]:
        raise UsageError(f"{summary_path}: malformed replay command {summary.replay!r} (not `ehrlab run ...`)")
    argv = [*tokens[1:], "--mode", mode, "--report-dir", str(out_dir)] + (["--quiet"] if quiet else [])
    try:
        args: argparse.Namespace = cli._parser().parse_args(argv)
    except SystemExit as exc:
        raise UsageError(f"{summary_path}: malformed replay command {summary.replay!r}") from exc
    if [p.as_posix() for p in args.paths] != [s.file for s in summary.scenarios]:
        raise UsageError(f"{summary_path}: the replay command's files do not match the report's scenarios")
    return args


def _new_run(out_dir: Path, before: set[str]) -> Path:
    created = sorted(p for p in out_dir.iterdir() if p.name != "latest" and p.name not in before and p.is_dir())
    return created[0] if len(created) == 1 else (out_dir / "latest").resolve()


def run(directory: Path, *, mode: str | None = None, force: bool = False, out_dir: Path | None = None,
        quiet: bool = False, allow_remote: bool = False) -> int:
    if mode == "real":  # the loopback guard (harness.guard), before the report is even read
        guard.toxiproxy_url(allow_remote=allow_remote)
    summary, _ = load_run(directory)  # exit 2 for a missing or malformed directory
    original_dir = directory.resolve()
    original = split_sections((directory / "journal.jsonl").read_bytes())  # read now: `latest` moves on
    if len(original) != len(summary.scenarios):
        raise UsageError(f"{directory / 'journal.jsonl'}: malformed journal ({len(original)} scenario(s) in it, "
                         f"{len(summary.scenarios)} in summary.json)")
    check_scenario_files(summary, force=force)
    replay_mode = mode or "virtual"
    comparable = summary.mode == "virtual" and summary.replay_identical and replay_mode == "virtual"
    if summary.mode == "real":
        _note("the original run was in real mode: real sockets and real time never give the same journal twice, "
              "so it cannot be compared byte for byte; "
              + ("re-running it in real mode (--mode real)" if replay_mode == "real"
                 else "re-running it in virtual mode with the same seed (--mode real to re-run over sockets)"))
    elif replay_mode == "real":
        _note("re-running a virtual run in real mode: journals are not compared (only virtual runs are "
              "deterministic)")
    target = out_dir if out_dir is not None else directory.parent
    args = _run_args(summary, directory / "summary.json", replay_mode, target, quiet)
    args.allow_remote = allow_remote  # never taken from the report: the opt-in is the caller's, each time
    _note(f"replaying {original_dir.name} (seed {summary.seed}): {summary.replay}")
    target.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in target.iterdir()}
    from harness import cli

    code: int = cli.cmd_run(args)
    if not comparable:
        print("NOT COMPARED (a real-mode run cannot be byte-identical)")
        return code
    new_dir = _new_run(target, before)
    replayed = split_sections((new_dir / "journal.jsonl").read_bytes())
    print(f"\ncomparing {new_dir / 'journal.jsonl'} with {original_dir / 'journal.jsonl'}")
    mismatched = False
    for index, scenario in enumerate(summary.scenarios):
        mine = replayed[index] if index < len(replayed) else Section(0, [])
        difference = first_difference(original[index], mine)
        if difference is None:
            print(f"  {scenario.name}: MATCH ({len(mine.lines)} lines)")
            continue
        mismatched = True
        where = f"line {difference.original_line}" + (
            f" (line {difference.replay_line} of the replay)" if difference.replay_line != difference.original_line
            else "")
        print(f"  {scenario.name}: MISMATCH at journal.jsonl {where}")
        print(f"    original: {excerpt(difference.original, difference.replay)}")
        print(f"    replay:   {excerpt(difference.replay, difference.original)}")
    if mismatched:
        print("MISMATCH: the replay's journal differs from the original")
        return 1
    print("MATCH")
    return code
