"""`ehrlab proxy`: run the Toxiproxy-compatible fault proxy until Ctrl-C.

    ehrlab proxy [--host 127.0.0.1] [--port 8474] [--config FILE] [--seed N] [--proxy-metrics] [--allow-any-host]

Ctrl-C (SIGINT) or SIGTERM stops it cleanly (exit 0). The API is unauthenticated, as Toxiproxy's: it binds
loopback only, unless every interface is asked for explicitly (`--host 0.0.0.0` with `--allow-any-host`, or
`EHRLAB_CONTAINER=1`), by the lab's one bind rule (`harness.guard.check_bind`); refused: exit 2, one line.
Like `toxiproxy-server` (`-host`, `-port`, `-config`, `-seed`, `-proxy-metrics`), but loopback by default and
strict: a config that cannot be read or
applied, or an address that cannot be bound, is one line on stderr and exit code 2. The seed (jitter,
toxicity, slicing) is drawn at random unless given, and printed, so a session can be replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import guard
from harness.clock import RealClock
from harness.errors import UsageError
from harness.shutdown import run_until_stopped
from simulators.toxiproxy.server import ConfigError, serve_toxiproxy


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ehrlab proxy", description="Run the Toxiproxy-compatible fault proxy until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="port of the HTTP API (default 8474)")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file of proxies to create, in the POST /populate format")
    parser.add_argument("--seed", type=int, default=None, help="seed for jitter and toxicity (default: random)")
    parser.add_argument("--proxy-metrics", action="store_true", help="serve byte counters on GET /metrics")
    parser.add_argument("--allow-any-host", action="store_true",
                        help="allow --host 0.0.0.0 or :: (every interface: inside a container; also "
                             "EHRLAB_CONTAINER=1). The API has no authentication")
    return parser


async def _serve(args: argparse.Namespace, seed: int) -> None:
    async with serve_toxiproxy(args.host, args.port, args.config, clock=RealClock(), rng=random.Random(seed),
                               proxy_metrics=args.proxy_metrics,
                               any_host=guard.any_host_allowed(args.allow_any_host)) as url:
        print(f"ehrlab proxy: Toxiproxy API on {url} (seed {seed}); Ctrl-C stops it", flush=True)
        await asyncio.Event().wait()  # until Ctrl-C or SIGTERM (`docker stop`, `kill`): run_until_stopped


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        if not 0 <= args.port <= 65535:
            raise _UsageError("--port must be between 0 and 65535")
        guard.check_bind(args.host, any_host=guard.any_host_allowed(args.allow_any_host))
    except (_UsageError, UsageError) as exc:
        print(f"ehrlab proxy: error: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(31)
    try:
        # SIGTERM's handler is installed before the server starts, so a SIGTERM just after the banner stops it in
        # order as Ctrl-C does (it used to end the process when it came before the handler)
        stopped = run_until_stopped(_serve(args, seed))
    except (ConfigError, OSError) as exc:
        print(f"ehrlab proxy: error: {exc}", file=sys.stderr)
        return 2
    if stopped is not None:
        print("ehrlab proxy: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
