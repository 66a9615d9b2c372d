"""Hostile and careless scenario files (issue 14): whatever a file holds, loading it is bounded in time, memory
and depth, every number it accepts is one the lab can honour, and each refusal is exit 2 with one line naming
the file (and, where there is one, the line and field).

The cases that once ate memory or hung (a billion-laughs YAML past 2.4 GB, a self-referring alias or 50,000
nested `[` ending in a RecursionError, a FIFO named x.yaml, `rate: 100000/s` for an hour, `.inf` durations)
run `ehrlab` in a subprocess under an address-space limit (`MEMORY_LIMIT`, set with `setrlimit` before it
starts) and a timeout, so a regression fails the test instead of eating the machine or hanging it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ScenarioError
from harness.journal.run import FaultStarted, FaultStopped
from harness.runner import run_scenario
from harness.scenario import load_scenario
from harness.scenario.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from tests.harness.test_loader import VALID  # the one small valid scenario the loader tests share

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1 << 30  # 1 GiB of address space: `ehrlab validate` of a library file needs about 0.3 GiB
TIMEOUT_S = 90  # a loaded 2-core machine starts `ehrlab` in 1-5 s; a hang or a runaway takes forever



def _limit_memory() -> None:  # runs in the child, before `ehrlab` starts
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def ehrlab_limited(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT_S, preexec_fn=_limit_memory, check=False)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("ehrlab: error: ")]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def billion_laughs() -> str:
    """The classic: nine levels of nine aliases, 342 bytes, 9**9 (387 million) strings once expanded."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    return text


# --- loading: bounded in memory, depth and time, only regular files ------------------------------------------

@pytest.mark.parametrize(("text", "says"), [
    pytest.param(billion_laughs(), f"more than {MAX_VALUES:,} values", id="billion-laughs"),
    pytest.param("x: &x [1, *x]\n", "refers to a value that contains it", id="alias-contains-itself"),
    pytest.param("x: &x {a: *x}\n", "refers to a value that contains it", id="mapping-alias-contains-itself"),
    pytest.param("x: " + "[" * 50_000 + "]" * 50_000 + "\n", f"nested more than {MAX_DEPTH} levels", id="50000-["),
    pytest.param("x: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n", f"nested more than {MAX_DEPTH} levels",
                 id="50000-{"),
])
def test_a_file_that_would_expand_or_nest_without_end_is_refused(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path / "hostile.yaml", text)
    proc = ehrlab_limited("validate", str(path))
    assert proc.returncode == 2, proc.stderr
    [line] = error_lines(proc)
    assert line.startswith(f"ehrlab: error: {path}:1: "), line
    assert says in line, line


def test_a_fifo_in_a_scenario_directory_is_refused_not_waited_on(tmp_path: Path) -> None:
    write(tmp_path / "good.yaml", VALID)
    os.mkfifo(tmp_path / "x.yaml")  # nobody ever writes to it: reading it would wait forever
    (tmp_path / "dir.yaml").mkdir()
    proc = ehrlab_limited("validate", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc) == [
        f"ehrlab: error: {tmp_path / 'dir.yaml'}: not a regular file (a directory, a FIFO or a device): the lab "
        "reads only files",
        f"ehrlab: error: {tmp_path / 'x.yaml'}: not a regular file (a directory, a FIFO or a device): the lab "
        "reads only files"]
    assert f"ok  {(tmp_path / 'good.yaml').as_posix()}" in proc.stdout


def test_a_device_is_refused_before_it_is_read(tmp_path: Path) -> None:
    proc = ehrlab_limited("validate", "/dev/zero")  # endless: read whole, it fills the memory limit
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc) == ["ehrlab: error: /dev/zero: not a regular file (a directory, a FIFO or a device): "
                                 "the lab reads only files"]


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "big.yaml", VALID + "#" * MAX_FILE_BYTES + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == (f"{path}: {path.stat().st_size:,} bytes, more than the lab's limit of "
                               f"{MAX_FILE_BYTES:,} (1 MiB)")
    write(path, VALID + "#" * (MAX_FILE_BYTES - len(VALID) - 2) + "\n")  # at the limit: read
    assert load_scenario(path).name == "tiny"


def test_a_file_with_more_values_than_the_limit_is_refused_without_aliases(tmp_path: Path) -> None:
    path = write(tmp_path / "many.yaml", VALID + "tags: [" + ", ".join(["a"] * MAX_VALUES) + "]\n")
    with pytest.raises(ScenarioError, match=f"more than {MAX_VALUES:,} values"):
        load_scenario(path)


@pytest.mark.parametrize(("extra", "line", "says"), [
    ("seed: " + "9" * 5000 + "\n", 18, "a number too long to read (over 4300 digits)"),
    ("tags: [2001-13-45]\n", 18, "month must be in 1..12"),
])
def test_a_value_yaml_cannot_construct_is_refused_at_its_line(tmp_path: Path, extra: str, line: int,
                                                              says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path / "s.yaml", VALID + extra))
    assert (info.value.line, info.value.message) == (line, f"invalid value: {says}")


def test_a_key_that_is_an_alias_of_a_collection_is_refused_not_expanded(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="mapping keys must be plain scalars"):
        load_scenario(write(tmp_path / "s.yaml", VALID + "x: &x [1, 2]\n? *x\n: 1\n"))


def test_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    text = VALID.replace("description: a", "description: &d a").replace("within: 30s", "within: 30s\n    name: *d")
    assert load_scenario(write(tmp_path / "s.yaml", text)).expectations[0].name == "a small scenario"


# --- numbers: finite, in a range the lab can honour, refused at validate time at their line -------------------

@pytest.mark.parametrize(("old", "new", "line", "field", "says"), [
    ("duration: 5m", "duration: .nan", 4, "duration", "a duration must be a finite number, got nan"),
    ("duration: 5m", 'duration: "nan"', 4, "duration", "expected a duration like 90s, 2m, 1h30m or 500ms, got 'nan'"),
    ("duration: 5m", "duration: .inf", 4, "duration", "a duration must be a finite number, got inf"),
    ("duration: 5m", "duration: 1.0e+308", 4, "duration", "duration must be at most 7 days (604800s), got 1e+308"),
    ("duration: 5m", "duration: 1e308", 4, "duration", "duration must be at most 7 days (604800s), got '1e308'"),
    ("duration: 5m", 'duration: "' + "1" * 300 + 'h"', 4, "duration", "duration must be at most 7 days"),
    ("duration: 5m", "duration: 169h", 4, "duration", "duration must be at most 7 days (604800s), got '169h'"),
    ("rate: 2/s", "rate: .nan", 8, "workload[0].rate", "a rate must be a finite number, got nan"),
    ("rate: 2/s", "rate: .inf", 8, "workload[0].rate", "a rate must be a finite number, got inf"),
    ("rate: 2/s", 'rate: "nan"', 8, "workload[0].rate", "expected a rate like 2/s or 120/m, got 'nan'"),
    ("rate: 2/s", "rate: 100000/s", 8, "workload[0].rate", "rate must be at most 1000/s, got '100000/s'"),
    ("rate: 2/s", "rate: 1000/s", 8, "workload[0].rate",
     "the workload would start about 300,000 operations, more than the lab's limit of 100,000 per scenario "
     "(workload[0]: 1000/s for 5m is 300,000)"),
    ("rate: 2/s", "rate: 2/s\n    max_in_flight: 1000000", 9, "workload[0].max_in_flight",
     "Input should be less than or equal to 10000"),
    ("kind: outage", "kind: error_rate\n    probability: .nan", 11, "faults[0].probability",
     "Input should be a finite number"),
    ("kind: outage", 'kind: error_rate\n    probability: "nan"', 11, "faults[0].probability",
     "Input should be a finite number"),
    ("kind: outage", "kind: latency\n    max: .inf", 11, "faults[0].max", "a duration must be a finite number"),
    ("kind: outage", "kind: net_latency\n    latency: 1s\n    toxicity: .nan", 12, "faults[0].toxicity",
     "Input should be a finite number"),
    ("kind: outage", "kind: bandwidth\n    rate: 100000000000000000000", 11, "faults[0].rate",
     "Input should be less than or equal to 2147483647"),
    ("at: 1m", "at: .nan", 12, "faults[0].at", "a duration must be a finite number"),
    ("within: 30s", "within: .inf", 17, "expectations[0].within", "a duration must be a finite number"),
    ("duration: 5m", "duration: 5m\nsetup:\n  patients: 2001", 6, "setup.patients",
     "Input should be less than or equal to 2000"),
    ("duration: 5m", "duration: 5m\nseed: 100000000000000000000", 5, "seed",
     "Input should be less than or equal to 9223372036854775807"),
])
def test_a_number_the_lab_cannot_honour_is_refused_at_its_line(tmp_path: Path, old: str, new: str, line: int,
                                                               field: str, says: str) -> None:
    assert old in VALID
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path / "s.yaml", VALID.replace(old, new, 1)))
    assert (info.value.line, info.value.field) == (line, field), info.value
    assert info.value.message.startswith(says), info.value.message


@pytest.mark.parametrize(("check", "line", "field", "says"), [
    ('check: success_rate\n    min: "nan"', 19, "expectations[1].min", "(a finite number), got nan"),
    ('check: success_rate\n    min: "nan%"', 19, "expectations[1].min", "(a finite number), got nan"),
    ("check: success_rate\n    min: .nan", 19, "expectations[1].min", "(a finite number), got nan"),
    ("check: latency\n    max: 1s\n    percentile: .nan", 20, "expectations[1].percentile",
     "Input should be a finite"),
    ("check: success_rate\n    min: 0.9\n    between: [.nan, 10s]", 20, "expectations[1].between[0]",
     "a duration must be a finite number"),
    ("check: success_rate\n    min: 0.9\n    between: [0, .inf]", 20, "expectations[1].between[1]",
     "a duration must be a finite number"),
    ("check: recovery_time\n    vendor: medplum\n    max: 1s\n    stable_for: 1.0e+308", 21,
     "expectations[1].stable_for", "duration must be at most 7 days"),
    ("check: events\n    kind: request\n    where: {duration_ms: .nan}\n    max: 0", 20, "expectations[1].where",
     "where.duration_ms: NaN and infinity can never match"),
])
def test_a_check_threshold_that_is_not_a_finite_number_is_refused(tmp_path: Path, check: str, line: int, field: str,
                                                                  says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path / "s.yaml", VALID + f"  - {check}\n"))
    assert (info.value.line, info.value.field) == (line, field), info.value
    assert says in info.value.message


def test_numbers_that_once_took_gigabytes_in_run_are_refused_before_it_starts(tmp_path: Path) -> None:
    """`run` validates every file before anything starts: under the memory limit, each is one line, exit 2."""
    files = {
        "rate.yaml": VALID.replace("duration: 5m", "duration: 1h").replace("rate: 2/s", "rate: 100000/s"),
        "product.yaml": VALID.replace("duration: 5m", "duration: 168h").replace("rate: 2/s", "rate: 1000/s")
        .replace("within: 30s", "within: 30s\n    name: other"),
        "inf.yaml": VALID.replace("duration: 5m", "duration: .inf"),
        "digits.yaml": VALID.replace("duration: 5m", 'duration: "' + "1" * 5000 + 'h"'),
        "nan.yaml": VALID.replace("duration: 5m", 'duration: "nan"'),
    }
    for name, text in files.items():
        write(tmp_path / name, text.replace("name: tiny", f"name: {name[:-5]}"))
    proc = ehrlab_limited("run", str(tmp_path), "--report-dir", str(tmp_path / "reports"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    found = [line.strip() for line in proc.stderr.splitlines() if line.startswith(f"  {tmp_path}")]  # one a file
    assert sorted(line.split(": ")[0].rsplit("/", 1)[-1] for line in found) == sorted(
        f"{name}:8" if name in ("rate.yaml", "product.yaml") else f"{name}:4" for name in files), proc.stderr
    assert not (tmp_path / "reports").exists()


def test_nan_in_run_is_exit_2_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", VALID.replace("duration: 5m", "duration: .nan"))
    assert main(["run", str(path), "--report-dir", str(tmp_path / "reports")]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        f"ehrlab: error: {path}:4: field 'duration': a duration must be a finite number, got nan")


# --- zero-length faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", ["0s", "0", "0.5ms", "0.0000001s"])
def test_a_fault_that_would_stop_as_it_starts_is_refused(tmp_path: Path, length: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path / "s.yaml", VALID.replace("for: 90s", f"for: {length}")))
    assert (info.value.line, info.value.field) == (13, "faults[0].for")
    assert info.value.message.startswith("a fault must last longer than 0s (at least 1ms)")


def test_the_shortest_fault_starts_and_stops_as_written(tmp_path: Path) -> None:
    """A 1 ms fault, and a second one starting as the first ends: each starts, then stops, at its times."""
    text = VALID.replace("for: 90s", "for: 1ms\n  - kind: outage\n    target: medplum\n    at: 60.001s\n"
                                     "    for: 1ms\n    mode: drop").replace("duration: 5m", "duration: 2m")
    path = write(tmp_path / "s.yaml", text.replace("check: breaker_opens", "check: breaker_stays_closed")
                 .replace("    within: 30s\n", ""))
    run = run_scenario(load_scenario(path), file=path, mode="virtual", seed=1)
    edges = sorted([("start", e.fault_id, e.t) for e in run.journal.of(FaultStarted)]
                   + [("stop", e.fault_id, e.t) for e in run.journal.of(FaultStopped)], key=lambda e: (e[2], e[0]))
    assert edges == [("start", "f1", 60.0), ("start", "f2", 60.001), ("stop", "f1", 60.001),
                     ("stop", "f2", 60.002)], edges
