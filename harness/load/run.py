"""One load run's processes: the launcher (simulators, service, faults), locust's master and workers.

Everything is real time (a load run is): the loop below polls every half second, reads the samples the
locust master writes (`loadtests.common`), feeds the abort watch, samples the launcher's memory
(`/proc/<pid>/status` VmRSS: the simulators, and the service when the profile has it, live in that
process) and bounds the run: locust stops itself at `--run-time`; past that plus a grace it is
terminated (SIGTERM: locust still writes its CSV and HTML), then killed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.errors import LabError
from harness.load.gates import AbortWatch, Gate, Sample
from harness.load.launcher import LauncherConfig
from harness.load.profiles import Profile

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60.0  # the launcher's simulators, then locust's workers connecting
GRACE_S = 30.0
POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class RunOptions:
    profile: Profile
    directory: Path
    users: int
    spawn_rate: float
    run_time_s: float
    workers: int
    seed: int
    shape: str
    gates: list[Gate]
    fault_scenario: Path | None = None
    abort_on_fail: bool = False
    abort_after_s: float | None = None
    abort_delay_s: float = 5.0
    keep_rate_limits: bool = False
    allow_remote: bool = False
    rss_interval_s: float = 2.0
    warmup_s: float = 30.0


@dataclass
class RunResult:
    final: Sample | None = None
    aborted: tuple[str, float] | None = None
    rss: dict[str, object] = field(default_factory=dict)
    lab_error: str | None = None
    targets: dict[str, object] = field(default_factory=dict)


def _now() -> float:
    return time.monotonic()  # real-time: a load run's processes run on the wall clock


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # real-time: polling the load run's processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def locust_commands(opts: RunOptions) -> list[list[str]]:
    """The master (or the one local process) first, then the workers."""
    base = [sys.executable, "-m", "locust", "-f", str(opts.profile.path)]
    master = [*base, "--headless", "-t", f"{opts.run_time_s:g}s", "--csv", str(opts.directory / "locust"),
              "--html", str(opts.directory / "locust.html"), "--only-summary"]
    if opts.shape == "steady":
        master += ["-u", str(opts.users), "-r", f"{opts.spawn_rate:g}"]
    if opts.workers == 0:
        return [master]
    port = free_port()
    master += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
               "--expect-workers", str(opts.workers), "--expect-workers-max-wait", f"{STARTUP_S:g}"]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [master] + [worker] * opts.workers


def _spawn(command: list[str], log: Path, env: dict[str, str], stdin: int | None = None) -> subprocess.Popen[str]:
    handle = log.open("w", encoding="utf-8")
    try:
        return subprocess.Popen(command, stdin=stdin, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                text=True)
    finally:
        handle.close()  # the child holds its own copy


def _stop(process: subprocess.Popen[str], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(launcher: subprocess.Popen[str], ready: Path) -> dict[str, object]:
    deadline = _now() + STARTUP_S
    while _now() < deadline:
        if ready.exists():
            data: dict[str, object] = json.loads(ready.read_text(encoding="utf-8"))
            ready.unlink()  # it holds the run's credentials: they go to locust's environment, not the report
            return data
        if launcher.poll() is not None:
            raise LabError(f"the launcher exited ({launcher.returncode}) before serving; see launcher.log")
        _sleep(0.1)
    raise LabError(f"the launcher did not serve within {STARTUP_S:g}s; see launcher.log")


class _Samples:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self.last: Sample | None = None
        self.final: Sample | None = None

    def read(self) -> list[Sample]:
        if not self._path.exists():
            return []
        with self._path.open("r", encoding="utf-8") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._offset += len(complete.encode("utf-8"))
        samples = [Sample.parse(line) for line in complete.splitlines() if line.strip()]
        for sample in samples:
            self.last = sample
            if sample.final:
                self.final = sample
        return samples


class _RssSampler:
    def __init__(self, pid: int, path: Path, interval: float, warmup: float) -> None:
        self.pid, self.interval, self.warmup = pid, interval, warmup
        self._out: IO[str] = path.open("w", encoding="utf-8")
        self._out.write("t_s,rss_kb\n")
        self._next = 0.0
        self.points: list[tuple[float, int]] = []

    def maybe_sample(self, t: float) -> None:
        if t < self._next:
            return
        self._next = t + self.interval
        kb = rss_kb(self.pid)
        if kb is not None:
            self.points.append((t, kb))
            self._out.write(f"{t:.1f},{kb}\n")
            self._out.flush()

    def summary(self) -> dict[str, object]:
        self._out.close()
        if not self.points:
            return {}
        baseline = next(((t, kb) for t, kb in self.points if t >= self.warmup), self.points[-1])
        end = self.points[-1][1]
        mb = 1024.0
        return {"pid": self.pid, "samples": len(self.points), "start_mb": round(self.points[0][1] / mb, 1),
                "baseline_mb": round(baseline[1] / mb, 1), "baseline_at_s": round(baseline[0], 1),
                "end_mb": round(end / mb, 1), "peak_mb": round(max(kb for _, kb in self.points) / mb, 1),
                "growth_mb": round((end - baseline[1]) / mb, 1)}


def execute(opts: RunOptions) -> RunResult:
    """Run the launcher and locust; return what the gates need. Every process is ended before returning."""
    result = RunResult()
    directory = opts.directory
    config = LauncherConfig(seed=opts.seed, vendor=opts.profile.vendor, service=opts.profile.service,
                            report_dir=str(directory), keep_rate_limits=opts.keep_rate_limits,
                            allow_remote=opts.allow_remote,
                            fault_scenario=None if opts.fault_scenario is None else str(opts.fault_scenario))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    launcher = _spawn([sys.executable, "-m", "harness.load.launcher", config.to_json()], directory / "launcher.log",
                      env, stdin=subprocess.PIPE)
    locusts: list[subprocess.Popen[str]] = []
    try:
        ready = _wait_ready(launcher, directory / "ready.json")
        result.targets = ready
        targets = ready["env"]
        assert isinstance(targets, dict)
        samples_path, stop_file = directory / "samples.jsonl", directory / "stop"
        locust_env = {**env, **{str(k): str(v) for k, v in targets.items()},
                      "EHRLAB_SAMPLES": str(samples_path), "EHRLAB_STOP_FILE": str(stop_file),
                      "EHRLAB_USERS": str(opts.users), "EHRLAB_SPAWN_RATE": f"{opts.spawn_rate:g}",
                      "EHRLAB_RUN_TIME_S": f"{opts.run_time_s:g}",
                      "EHRLAB_SHAPE": "" if opts.shape == "steady" else opts.shape}
        commands = locust_commands(opts)
        for i, command in enumerate(commands):
            log = directory / ("locust.log" if i == 0 else f"locust-worker-{i}.log")
            locusts.append(_spawn(command, log, locust_env))
        result.rss, result.aborted = _watch(opts, launcher, locusts[0], _Samples(samples_path), stop_file,
                                            int(str(ready["pid"])), result)
    finally:
        for worker in locusts[1:]:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                _stop(worker, 5)
        for process in locusts[:1]:
            _stop(process, 10)
        if launcher.stdin is not None and not launcher.stdin.closed:
            with suppress(BrokenPipeError):
                launcher.stdin.close()  # end of stdin: the launcher stops its faults and exits
        try:
            launcher.wait(20)
        except subprocess.TimeoutExpired:
            _stop(launcher, 5)
        # interrupted between the launcher writing ready.json and this process reading it: the run's credentials
        # must not stay in the report directory
        (directory / "ready.json").unlink(missing_ok=True)
    return result


def _watch(opts: RunOptions, launcher: subprocess.Popen[str], master: subprocess.Popen[str], samples: _Samples,
           stop_file: Path, pid: int, result: RunResult) -> tuple[dict[str, object], tuple[str, float] | None]:
    watch = AbortWatch(opts.gates, opts.abort_after_s, opts.abort_delay_s)
    rss = _RssSampler(pid, opts.directory / "rss.csv", opts.rss_interval_s, min(opts.warmup_s, opts.run_time_s / 5))
    started = _now()
    deadline = started + STARTUP_S + opts.run_time_s + GRACE_S
    load_started: float | None = None
    aborted: tuple[str, float] | None = None
    while master.poll() is None:
        for sample in samples.read():
            if load_started is None:
                load_started = _now()
                assert launcher.stdin is not None
                launcher.stdin.write("start\n")  # the fault timeline starts with the load
                launcher.stdin.flush()
            breached = watch.feed(sample) if opts.abort_on_fail and aborted is None else None
            if breached is not None:
                aborted = (breached.id, sample.t)
                stop_file.touch()
        if load_started is not None:
            rss.maybe_sample(_now() - load_started)
        if launcher.poll() is not None:
            result.lab_error = f"the launcher (simulators) exited during the run ({launcher.returncode})"
            break
        if _now() > deadline:
            result.lab_error = "locust did not stop within --run-time plus grace; terminated"
            break
        _sleep(POLL_S)
    _stop(master, 15)
    samples.read()
    result.final = samples.final or samples.last
    if result.final is None and result.lab_error is None:
        result.lab_error = f"locust produced no stats (exit {master.returncode}); see locust.log"
    return rss.summary(), aborted
