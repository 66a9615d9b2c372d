"""`ehrlab`: run scenarios and gate on their verdicts; serve simulators; serve the integration service; run
the fault proxy.

    ehrlab run PATH... [--mode virtual|real] [--seed N] [--report-dir DIR] [--time-scale X] [--quiet]
                       [--only TAG]... [--skip TAG]... [--gameday] [--allow-remote]
    ehrlab replay REPORT_DIR [--mode virtual|real] [--force] [--report-dir DIR] [--quiet] [--allow-remote]
    ehrlab validate PATH...
    ehrlab check REPORT_DIR [--expectations FILE] [--report-dir DIR]
    ehrlab events [KIND] [--list]
    ehrlab list [PATH...] [--only TAG]... [--skip TAG]...
    ehrlab serve VENDOR...|all [--host 127.0.0.1] [--port P] [--seed N] [--patients N]
    ehrlab service [--host 127.0.0.1] [--port P] [--seed N] [--db PATH] [--medplum-url URL] [--redis URL]
                   [--allow-remote]
    ehrlab proxy [--host 127.0.0.1] [--port 8474] [--config FILE]
    ehrlab load PROFILE [--users N] [--spawn-rate R] [--run-time 30s] [--workers N] [--fault-scenario FILE] ...
    ehrlab worker --db PATH [--redis URL] --medplum-url URL --seed N [--concurrency N] [--stall-timeout S] ...
    ehrlab enqueue --db PATH [--redis URL] --count N [--seed N]
    ehrlab queue stats --db PATH [--redis URL]

Exit codes: 0 every check passed; 1 a check failed; 2 bad usage or an invalid scenario file (one line on
stderr naming the file, line and field; nothing is run); 3 the lab could not judge (INCONCLUSIVE: a fault it
could not inject, a simulator that did not start, its own lateness past the scenario's `lab.max_lateness` in
real mode); 130 aborted (Ctrl-C or SIGTERM: in real mode faults are stopped and the reports written first,
marked ABORTED). Several scenarios: the worst verdict wins, aborted > fail > inconclusive > pass
(`harness.report.models.PRECEDENCE`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from harness.clock import RealClock
from harness.errors import EXIT_ABORTED, HarnessError, UsageError
from harness.gameday import GameDayConsole, check_run_targets
from harness.hooks import RunHooks
from harness.journal import wall_stamp
from harness.report.models import RunSummary, file_sha256, run_verdict
from harness.report.writers import verdict_table, write_run
from harness.runner import ScenarioRun, run_scenario, summarize
from harness.scenario.select import describe, load_all, select, validate_command
from harness.sut.process import copy_sut_logs, refuse_for_run

DEFAULT_SEED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise SystemExit(f"ehrlab: error: {message}")  # argparse's convention is exit 2; see main()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ehrlab", description="A lab for testing EHR integrations under failure.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run scenario files and print their verdicts")
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="scenario files or directories of them")
    run.add_argument("--mode", choices=["virtual", "real"], default="virtual",
                     help="virtual: in-process, virtual time (default); real: loopback sockets, real time")
    run.add_argument("--seed", type=int, default=None,
                     help=f"seed for every random choice (default: the file's seed, else {DEFAULT_SEED})")
    run.add_argument("--report-dir", type=Path, default=Path("reports"), help="where runs write (default: reports)")
    run.add_argument("--time-scale", type=float, default=1.0,
                     help="real mode: run the scenario clock this many times faster than the wall (default 1)")
    run.add_argument("--quiet", action="store_true", help="print only the verdict table")
    run.add_argument("--only", action="append", default=[], metavar="TAG",
                     help="run only scenarios with this tag (repeatable: any of them)")
    run.add_argument("--skip", action="append", default=[], metavar="TAG",
                     help="leave out scenarios with this tag (repeatable; wins over --only)")
    run.add_argument("--gameday", action="store_true",
                     help="real mode: print each step as it happens, pause at manual steps for the operator "
                          "(Enter), print the incident report's path at the end")
    run.add_argument("--allow-remote", action="store_true",
                     help="real mode: allow a target outside loopback (a remote TOXIPROXY_URL)")
    validate = commands.add_parser("validate", help="check scenario files without running them (exit 0 or 2)")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="scenario files or directories")
    listing = commands.add_parser("list", help="list scenarios: name, duration, vendors, tags, file")
    listing.add_argument("paths", nargs="*", type=Path, default=[Path("scenarios")], metavar="PATH",
                         help="scenario files or directories (default: scenarios)")
    listing.add_argument("--only", action="append", default=[], metavar="TAG", help="only scenarios with this tag")
    listing.add_argument("--skip", action="append", default=[], metavar="TAG", help="leave out this tag")
    serve = commands.add_parser("serve", help="serve vendor simulators on loopback until Ctrl-C")
    serve.add_argument("vendors", nargs="+", metavar="VENDOR", help="medplum, epic, cerner, allscripts, or all")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0,
                       help="port of the first simulator, the next ones count up (default: ephemeral ports)")
    serve.add_argument("--seed", type=int, default=None, help="seed for data and credentials (default: random)")
    serve.add_argument("--patients", type=int, default=20, help="synthetic patients per simulator (default 20)")
    serve.add_argument("--allow-any-host", action="store_true",
                       help="allow --host 0.0.0.0 (every interface: inside a container; also EHRLAB_CONTAINER=1)")
    service = commands.add_parser("service", help="serve the integration service against a Medplum simulator")
    service.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    service.add_argument("--port", type=int, default=0, help="the service's port (default: an ephemeral port)")
    service.add_argument("--seed", type=int, default=None, help="seed for the simulator's data (default: random)")
    service.add_argument("--db", type=Path, default=None,
                         help="the application database file (default: a temporary one, removed on exit)")
    service.add_argument("--medplum-url", default=None, metavar="URL",
                         help="use the Medplum simulator already served at URL (same --seed) instead of starting one")
    service.add_argument("--redis", default=None, metavar="URL",
                         help="keep the job queue on Redis at URL (redis://host:6379/0) instead of SQLite")
    service.add_argument("--allow-any-host", action="store_true",
                         help="allow --host 0.0.0.0 (every interface: inside a container; also EHRLAB_CONTAINER=1)")
    service.add_argument("--allow-remote", action="store_true",
                         help="allow a --medplum-url or --redis host outside loopback")
    commands.add_parser("proxy", help="run the Toxiproxy-compatible fault proxy (see `ehrlab proxy --help`)",
                        add_help=False)
    report = commands.add_parser("report", help="re-render a run's reports from its summary.json and journal.jsonl")
    report.add_argument("report_dir", type=Path, metavar="REPORT_DIR", help="a run's directory, e.g. reports/latest")
    replay = commands.add_parser("replay", help="re-run a report's scenarios with its seed and mode; compare journals")
    replay.add_argument("report_dir", type=Path, metavar="REPORT_DIR", help="a run's directory, e.g. reports/latest")
    replay.add_argument("--mode", choices=["virtual", "real"], default=None,
                        help="re-run in this mode (default: virtual; only a virtual run can be compared byte "
                             "for byte)")
    replay.add_argument("--force", action="store_true", help="re-run even if a scenario file changed since the run")
    replay.add_argument("--report-dir", dest="out_dir", type=Path, default=None, metavar="DIR",
                        help="where the new run is written (default: REPORT_DIR's parent)")
    replay.add_argument("--quiet", action="store_true", help="print only the verdict table and the comparison")
    replay.add_argument("--allow-remote", action="store_true",
                        help="--mode real: allow a target outside loopback (a remote TOXIPROXY_URL)")
    from harness.check_cmd import add_parser as add_check_parser
    from harness.journal.reference import add_parser as add_events_parser
    from harness.load.command import add_parser as add_load_parser

    add_check_parser(commands)
    add_events_parser(commands)
    add_load_parser(commands)
    from harness.queue_cmd import add_parsers as add_queue_parsers
    from harness.worker_cmd import add_parser as add_worker_parser

    add_queue_parsers(commands)
    add_worker_parser(commands)
    return parser


def _run_id(report_dir: Path, mode: str, seed: int) -> str:
    stamp = RealClock().now().strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{mode}-seed{seed}"
    run_id, n = base, 1
    while (report_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _replay(files: Sequence[Path], args: argparse.Namespace) -> str:
    parts = ["ehrlab", "run", *[f.as_posix() for f in files], "--mode", args.mode]  # the selection, by file
    if args.seed is not None:
        parts += ["--seed", str(args.seed)]
    if args.mode == "real" and args.time_scale != 1.0:
        parts += ["--time-scale", f"{args.time_scale:g}"]
    return shlex.join(parts)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """Real mode: SIGTERM between scenarios interrupts like Ctrl-C (inside a scenario the runner's own handlers
    abort it and keep its journal)."""
    previous = signal.getsignal(signal.SIGTERM)
    if enabled:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        if enabled:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """While the reports of an aborted run are written, a second Ctrl-C must not leave them half written."""
    held = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in held:
        signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, previous in held.items():
            signal.signal(sig, previous)


def cmd_run(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        raise UsageError("--time-scale must be positive")
    check_run_targets(args.mode, gameday=args.gameday, allow_remote=args.allow_remote)  # before any connection
    scenarios = select(load_all(args.paths), args.only, args.skip)  # validate everything before running anything
    refuse_for_run(scenarios, mode=args.mode, time_scale=args.time_scale, allow_remote=args.allow_remote)
    files = [f for f, _ in scenarios]
    digests = {f: file_sha256(f) for f in files}  # as loaded: `ehrlab replay` refuses a file changed since
    # Real mode shows the operator's console (steps as they happen, a progress line on a terminal); a game day
    # adds manual steps and the incident report's path.
    hooks = (RunHooks() if args.mode == "virtual" or (args.quiet and not args.gameday)
             else GameDayConsole(time_scale=args.time_scale))
    real = args.mode == "real"
    started_at = wall_stamp(RealClock().now())  # the run's real start, whatever the mode
    runs: list[ScenarioRun] = []
    aborted = False
    with _sigterm_interrupts(real):
        for file, scenario in scenarios:
            seed = args.seed if args.seed is not None else (
                scenario.seed if scenario.seed is not None else DEFAULT_SEED)
            try:
                run = run_scenario(scenario, file=file, mode=args.mode, seed=seed, time_scale=args.time_scale,
                                   hooks=hooks, gameday=args.gameday, handle_signals=real,
                                   allow_remote=args.allow_remote)
            except KeyboardInterrupt:  # between scenarios, or a virtual run: nothing of this scenario happened
                if not real:
                    raise
                aborted = True
                break
            runs.append(run)
            if run.aborted is not None:
                aborted = True
                break
    judged = [r for r in runs if r.started]
    not_run = [f.as_posix() for f in files[len(judged):]]
    first = scenarios[0][1].seed if scenarios[0][1].seed is not None else DEFAULT_SEED
    first_seed = judged[0].seed if judged else first
    run_seed = args.seed if args.seed is not None else first_seed
    report_dir: Path = args.report_dir
    run_id = _run_id(report_dir, args.mode, run_seed)
    summaries = [summarize(r, digests[r.file]) for r in judged]
    summary = RunSummary(
        run_id=run_id, started_at=started_at, seed=run_seed, mode=args.mode, time_scale=args.time_scale,
        verdict=run_verdict((s.verdict for s in summaries), aborted=aborted),
        replay=_replay(files, args), scenarios=summaries, not_run=not_run, replay_identical=not real,
    )
    lines = [line for r in judged for line in r.journal.lines()]
    with _signals_held() if aborted else _nothing():
        write_run(report_dir / run_id, summary, lines)
        copy_sut_logs(report_dir / run_id, [(r.scenario.name, r.sut_log) for r in judged])
    print(verdict_table(summaries))  # with each INCONCLUSIVE / ABORTED scenario's reason
    if not_run:
        print(f"not run (aborted first): {', '.join(not_run)}")
    print(f"\n{summary.verdict.upper()}: report in {report_dir / run_id} (also {report_dir / 'latest'})")
    print(f"replay: {summary.replay}" + ("" if summary.replay_identical else
                                         "  (real mode: same seed and timeline, not a byte-identical journal)"))
    if args.gameday:
        print(f"incident report: {report_dir / run_id / 'incident.md'}")
    return summary.exit_code


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def cmd_validate(args: argparse.Namespace) -> int:
    """Load every file and list every problem of each (file, line, field); exit 0 or 2; run nothing."""
    return validate_command(args.paths)


def cmd_list(args: argparse.Namespace) -> int:
    for file, scenario in select(load_all(args.paths), args.only, args.skip):
        print(describe(file, scenario))
    return 0


def _quiet_http_loggers() -> None:
    """httpx logs every request's full URL at INFO; a search's query string can identify a patient."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_http_loggers()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["proxy"]:
        proxy_main: Callable[[list[str]], int] = importlib.import_module("simulators.toxiproxy.cli").main
        return proxy_main(args_list[1:])
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        return 0 if exc.code in (0, None) else 2
    try:
        if args.command == "serve":
            from harness import serve_cmd

            return serve_cmd.run(args.vendors, host=args.host, port=args.port, seed=args.seed,
                                 patients=args.patients, allow_any_host=args.allow_any_host)
        if args.command == "service":
            from harness import service_cmd

            return service_cmd.run(host=args.host, port=args.port, seed=args.seed, db=args.db,
                                   medplum_url=args.medplum_url, allow_any_host=args.allow_any_host,
                                   redis_url=args.redis, allow_remote=args.allow_remote)
        if args.command == "worker":
            from harness import worker_cmd

            return worker_cmd.run(args)
        if args.command == "enqueue":
            from harness import queue_cmd

            return queue_cmd.run_enqueue(args)
        if args.command == "queue":
            from harness import queue_cmd

            return queue_cmd.run_stats(args)
        if args.command == "load":
            from harness.load import command as load_command

            return load_command.run(args)
        if args.command == "report":
            from harness import report_cmd

            return report_cmd.run(args.report_dir)
        if args.command == "replay":
            from harness import replay_cmd

            return replay_cmd.run(args.report_dir, mode=args.mode, force=args.force, out_dir=args.out_dir,
                                  quiet=args.quiet, allow_remote=args.allow_remote)
        if args.command == "check":
            from harness import check_cmd

            return check_cmd.command(args)
        if args.command == "events":
            from harness.journal import reference

            return reference.command(args.kind, list_only=args.list)
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "list":
            return cmd_list(args)
        code: int = cmd_run(args)
        return code
    except HarnessError as exc:
        print(f"ehrlab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ehrlab: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except BrokenPipeError:
        # The reader went away (`ehrlab events | head`): stop quietly as a program killed by SIGPIPE would, and
        # point stdout at /dev/null so the interpreter's final flush does not print a traceback either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
