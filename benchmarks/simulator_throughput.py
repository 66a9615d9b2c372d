"""Simulator throughput: Medplum under uvicorn against a bare Starlette JSON endpoint, side by side.

    .venv/bin/python benchmarks/simulator_throughput.py [--seconds 3] [--rounds 3] [--connections 8]

A child process serves both apps on ephemeral 127.0.0.1 ports with `simulators.server.serve` (uvicorn,
h11, the way real-mode labs serve simulators), on the real clock. This process is the load generator:
`--connections` keep-alive HTTP/1.1 connections per target, each sending the next request as soon as the
previous response is read, written with raw asyncio streams (an httpx client costs more CPU per request
than the bare endpoint and would flatten every ratio). Targets, each measured for `--seconds`, rounds
interleaved so background load hits all of them alike:

- bare:   `GET /ok` on a Starlette app returning a small JSON object (the floor uvicorn itself costs);
- read:   an authenticated `GET /fhir/R4/Patient/{id}` on Medplum (bearer check, scopes, FHIR quota,
          RateLimit header, AuditEvent written, chaos and journal layers on);
- search: an authenticated paged search `GET /fhir/R4/Patient?_count=20&_offset=k` over 200 patients.

Prints requests per second (median over rounds) and each Medplum target as a share of the bare endpoint,
and, per target, the server process's CPU time per request and its CPU use (share of one core, from the
server's own `time.process_time()`). On a busy machine the server may not get a whole core, and the
throughput shares then say more about the scheduler than about the code: the CPU cost per request (and
bare's cost as a share of it, the throughput share a saturated server would show) stays meaningful.
`--profile FILE` runs the server process under cProfile while it serves (all targets together, unless
`--only`; the shares are then meaningless) and writes pstats to FILE: `python -m pstats FILE` shows where
the server's time goes.
Targets from issue 3: read >= 60 %, search >= 40 %. Medplum's quotas are raised for the run (they would
answer 429 long before the server is saturated); every non-200 answer is counted and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATIENTS = 200
PAGE = 20
#: Issue 3's targets: each Medplum target's throughput as a share of the bare endpoint's.
TARGETS = {"read": 0.60, "search": 0.40}


def _serve(conn: Connection, profile: str | None) -> None:
    """Child process: serve both apps until the parent says stop (under cProfile if `profile`)."""
    import cProfile
    import random

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from harness.clock import RealClock
    from simulators.medplum import MedplumSettings, create_medplum
    from simulators.server import serve

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"resourceType": "OperationOutcome", "ok": True})

    async def main() -> None:
        bare = Starlette(routes=[Route("/ok", ok)])
        settings = MedplumSettings(clients={"bench": "bench-secret"}, admin_token="bench-admin-token",
                                   rate_limit_per_minute=10**9, fhir_quota_per_minute=10**9)
        sim = create_medplum(settings, RealClock(), random.Random(1))
        ids = sim.seed_patients(PATIENTS)
        token = sim.tokens.issue("bench", ["system/*.cruds"], lifetime_s=3600).value
        async with serve(bare) as bare_url, serve(sim.app) as medplum_url:
            if profiler is not None:
                profiler.enable()  # serving only: seeding the store would swamp the profile
            conn.send((bare_url, medplum_url, token, ids[0]))
            loop = asyncio.get_running_loop()
            while await loop.run_in_executor(None, conn.recv) == "cpu":  # real-time: serve until "stop"
                conn.send(time.process_time())  # real-time: this process's CPU seconds, for CPU per request
            if profiler is not None:
                profiler.disable()

    profiler = cProfile.Profile() if profile is not None else None
    asyncio.run(main())
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)


@dataclass
class Tally:
    ok: int = 0
    other: int = 0


async def _worker(host: str, port: int, requests: list[bytes], deadline: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while time.perf_counter() < deadline:  # real-time: a throughput benchmark measures the wall
            writer.write(requests[n % len(requests)])
            n += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status == 200:
                tally.ok += 1
            else:
                tally.other += 1
    finally:
        writer.close()


async def _measure(url: str, requests: list[bytes], seconds: float, connections: int) -> tuple[float, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    tally = Tally()
    started = time.perf_counter()  # real-time: a throughput benchmark measures the wall
    deadline = started + seconds
    await asyncio.gather(*(_worker(host, int(port), requests, deadline, tally) for _ in range(connections)))
    return tally.ok / (time.perf_counter() - started), tally.other  # real-time: as above


def _request(path: str, host: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Accept: application/fhir+json\r\n\r\n".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--profile", metavar="FILE", help="profile the server process into FILE (pstats format)")
    parser.add_argument("--only", choices=("bare", "read", "search"), help="measure one target (with --profile)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.rounds <= 0 or args.connections <= 0:
        parser.error("--seconds, --rounds and --connections must be positive")

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, args.profile), daemon=True)
    server.start()
    bare_url, medplum_url, token, patient_id = parent.recv()
    host = medplum_url.removeprefix("http://")
    targets = {
        "bare": (bare_url, [_request("/ok", bare_url.removeprefix("http://"))]),
        "read": (medplum_url, [_request(f"/fhir/R4/Patient/{patient_id}", host, token)]),
        "search": (medplum_url, [_request(f"/fhir/R4/Patient?_count={PAGE}&_offset={k * PAGE}", host, token)
                                 for k in range(PATIENTS // PAGE)]),
    }
    if args.only:
        targets = {args.only: targets[args.only]}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}  # server CPU seconds per request
    busy: dict[str, list[float]] = {name: [] for name in targets}  # server CPU seconds per wall second
    errors: dict[str, int] = dict.fromkeys(targets, 0)

    def server_cpu() -> float:
        parent.send("cpu")
        return float(parent.recv())

    try:
        for _ in range(args.rounds):
            for name, (url, requests) in targets.items():
                cpu_before, started = server_cpu(), time.perf_counter()  # real-time: as in _measure
                rate, other = asyncio.run(_measure(url, requests, args.seconds, args.connections))
                used, elapsed = server_cpu() - cpu_before, time.perf_counter() - started  # real-time: as above
                rates[name].append(rate)
                cpu[name].append(used / max(1.0, rate * elapsed))
                busy[name].append(used / elapsed)
                errors[name] += other
    finally:
        parent.send("stop")
        server.join(timeout=60)
        if server.is_alive():
            server.terminate()

    median = {name: statistics.median(values) for name, values in rates.items()}
    cost = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
    load = {name: statistics.median(values) for name, values in busy.items()}

    print(f"simulator throughput ({args.rounds} rounds x {args.seconds:g} s, {args.connections} connections, medians)")
    print(f"  {'':<20} {'requests/s':>10}  {'of bare':>7}  {'target':<9} {'server CPU/request':>18}"
          f"  {'server busy':>11}")
    for name in median:
        label = "bare Starlette JSON" if name == "bare" else f"medplum {name}"
        share = verdict = relative = ""
        if name != "bare" and "bare" in median:
            share = f"{median[name] / median['bare']:.1%}"
            verdict = f"{TARGETS[name]:.0%} " + ("ok" if median[name] / median["bare"] >= TARGETS[name] else "UNDER")
            relative = f" ({cost['bare'] / cost[name]:.0%})"
        print(f"  {label:<20} {median[name]:10.0f}  {share:>7}  {verdict:<9} {f'{cost[name]:.0f} us{relative}':>18}"
              f"  {load[name]:11.0%}")
    if "bare" in median and len(median) > 1:
        print("  (in brackets: bare's server CPU per request as a share of the target's, the share a saturated server "
              "shows)")
    if min(load.values()) < 0.9:
        print("  note: the server had less than 90 % of a core for some target (a busy machine, or too few "
              "connections to keep it busy): the throughput shares then measure more than the server's code")
    if any(errors.values()):
        print(f"  non-200 answers: {errors}")


if __name__ == "__main__":
    main()
