"""`ehrlab load PROFILE ...`: arguments, validation (exit 2), the run, the reports, the exit code.

    ehrlab load read|write|mixed|service|soak [--users N] [--spawn-rate R] [--run-time 30s] [--workers N]
                [--shape steady|ramp|spike|soak] [--seed S] [--report-dir DIR] [--fault-scenario FILE]
                [--gate ID]... [--abort-on-fail [--abort-after 10s] [--abort-delay 5s]]
                [--max-rss-growth MB] [--keep-rate-limits]

                [--allow-remote]

Exit codes: 0 every gate passed; 1 a gate failed (or the lab failed); 2 bad usage (a `TOXIPROXY_URL` outside
loopback without `--allow-remote` included: refused before anything starts); 130 interrupted. Ctrl-C and SIGTERM
stop it in order: locust and the launcher are ended (the launcher stops its faults and removes its temporary
database), nothing is left running, and the report directory keeps what was written so far.
"""

from __future__ import annotations

import argparse
import random
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from harness import guard
from harness.clock import RealClock
from harness.durations import parse_duration
from harness.errors import UsageError
from harness.load.gates import DEFAULT_GATES, catalogue_gates, judge, rss_gate
from harness.load.launcher import load_faults
from harness.load.profiles import PROFILES, SHAPES
from harness.load.report import LoadSummary, verdict_lines, write_reports
from harness.load.run import RunOptions, execute
from harness.sla import default_catalogue


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    load = commands.add_parser("load", help="run a locust load profile headless and gate it on the SLA catalogue")
    load.add_argument("profile", choices=sorted(PROFILES), metavar="PROFILE",
                      help="; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    load.add_argument("--users", type=int, default=10, help="simulated users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    load.add_argument("--run-time", default=None, help="how long the load runs: 30s, 3m (default: the profile's)")
    load.add_argument("--workers", type=int, default=0,
                      help="locust master + N worker processes on this machine (default 0: one process)")
    load.add_argument("--shape", choices=SHAPES, default=None, help="load shape (default: the profile's)")
    load.add_argument("--seed", type=int, default=None, help="seed for the simulators' data (default: random)")
    load.add_argument("--report-dir", type=Path, default=Path("reports"), help="where runs write (default: reports)")
    load.add_argument("--fault-scenario", type=Path, default=None, metavar="FILE",
                      help="play this scenario file's faults during the load (from the load's start)")
    load.add_argument("--gate", action="append", default=[], metavar="ID",
                      help=f"a catalogue rule or band to gate on (repeatable; default {' '.join(DEFAULT_GATES)})")
    load.add_argument("--abort-on-fail", action="store_true",
                      help="stop the run early when a gate stays breached (k6's abortOnFail)")
    load.add_argument("--abort-after", default=None,
                      help="how long a breach must last to abort (default: the rule's `for`)")
    load.add_argument("--abort-delay", default="5s", help="no abort in the first part of the run (default 5s)")
    load.add_argument("--max-rss-growth", type=float, default=None, metavar="MB",
                      help="gate on the simulators' memory growth after warm-up (default: the profile's)")
    load.add_argument("--allow-remote", action="store_true",
                      help="allow a target outside loopback (a remote TOXIPROXY_URL for the fault proxies)")
    load.add_argument("--keep-rate-limits", action="store_true",
                      help="keep the simulators' rate limits and quotas (default: off for a load run)")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM interrupts the run like Ctrl-C: `execute`'s finally ends locust and the launcher in order (else
    they would outlive a killed parent)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _duration(flag: str, value: str) -> float:
    try:
        return parse_duration(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{flag} {value!r}: {exc}") from None


def _run_id(report_dir: Path, profile: str, seed: int) -> str:
    stamp = RealClock().now().strftime("%Y%m%dT%H%M%SZ")  # the run's name, as `ehrlab run` names its runs
    base = run_id = f"{stamp}-load-{profile}-seed{seed}"
    n = 1
    while (report_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _replay(args: argparse.Namespace, seed: int, run_time: float, shape: str) -> str:
    parts = ["ehrlab", "load", args.profile, "--users", str(args.users), "--spawn-rate", f"{args.spawn_rate:g}",
             "--run-time", f"{run_time:g}s", "--workers", str(args.workers), "--shape", shape, "--seed", str(seed)]
    if args.fault_scenario is not None:
        parts += ["--fault-scenario", args.fault_scenario.as_posix()]
    for gate in args.gate:
        parts += ["--gate", gate]
    if args.abort_on_fail:
        parts += ["--abort-on-fail"] + (["--abort-after", args.abort_after] if args.abort_after else [])
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    guard.toxiproxy_url(allow_remote=args.allow_remote)  # the loopback guard: before anything starts
    profile = PROFILES[args.profile]
    if args.users < 1:
        raise UsageError("--users must be at least 1")
    if args.spawn_rate <= 0:
        raise UsageError("--spawn-rate must be positive")
    if not 0 <= args.workers <= 64:
        raise UsageError("--workers must be between 0 and 64")
    run_time = _duration("--run-time", args.run_time) if args.run_time else profile.run_time_s
    if not 1 <= run_time <= 24 * 3600:
        raise UsageError("--run-time must be between 1s and 24h")
    abort_after = _duration("--abort-after", args.abort_after) if args.abort_after else None
    abort_delay = _duration("--abort-delay", args.abort_delay)
    if args.fault_scenario is not None:
        load_faults(str(args.fault_scenario))  # a bad file is bad usage (exit 2), before anything starts
    gates = catalogue_gates(default_catalogue(), args.gate or DEFAULT_GATES)
    max_growth = args.max_rss_growth if args.max_rss_growth is not None else profile.max_rss_growth_mb
    if max_growth is not None:
        gates.append(rss_gate(max_growth))
    shape = args.shape or profile.shape
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(31)
    report_dir: Path = args.report_dir
    run_id = _run_id(report_dir, profile.name, seed)
    directory = report_dir / run_id
    directory.mkdir(parents=True)
    clock = RealClock()
    began = clock.monotonic()
    print(f"== load {profile.name}: {args.users} users, {shape}, {run_time:g}s, "
          f"{args.workers or 'no'} worker(s), seed {seed} -> {directory}", flush=True)
    with sigterm_interrupts():
        result = execute(RunOptions(
            profile=profile, directory=directory, users=args.users, spawn_rate=args.spawn_rate, run_time_s=run_time,
            workers=args.workers, seed=seed, shape=shape, gates=gates, fault_scenario=args.fault_scenario,
            abort_on_fail=args.abort_on_fail, abort_after_s=abort_after, abort_delay_s=abort_delay,
            keep_rate_limits=args.keep_rate_limits, allow_remote=args.allow_remote))
    growth = result.rss.get("growth_mb")
    extra = {"rss_growth_mb": float(str(growth)) if growth is not None else None}
    summary = LoadSummary(
        run_id=run_id, profile=profile.name, shape=shape, users=args.users, spawn_rate=args.spawn_rate,
        run_time_s=run_time, workers=args.workers, seed=seed,
        fault_scenario=None if args.fault_scenario is None else args.fault_scenario.as_posix(),
        replay=_replay(args, seed, run_time, shape), gates=judge(gates, result.final, extra, result.aborted),
        final=result.final, wall_s=clock.monotonic() - began, aborted=result.aborted, rss=result.rss,
        lab_error=result.lab_error)
    write_reports(directory, summary)
    print("\n".join(verdict_lines(summary)))
    if result.aborted is not None:
        print(f"ABORTED at {result.aborted[1]:.0f}s: gate {result.aborted[0]} stayed breached")
    print(f"\n{summary.verdict.upper()}: report in {directory} (locust.html, locust_stats.csv, junit.xml)")
    print(f"replay: {summary.replay}")
    return 0 if summary.verdict == "pass" else 1
