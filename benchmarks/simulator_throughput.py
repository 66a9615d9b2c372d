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

Prints requests per second (median over rounds) and each Medplum target as a share of the bare endpoint.
`--profile FILE` runs the server process under cProfile (all targets together; the ratios are then
meaningless) and writes pstats to FILE: `python -m pstats FILE` shows where the server's time goes.
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
            conn.send((bare_url, medplum_url, token, ids[0]))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # real-time: wait for "stop"

    if profile is None:
        asyncio.run(main())
        return
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, main())
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
    errors: dict[str, int] = dict.fromkeys(targets, 0)
    try:
        for _ in range(args.rounds):
            for name, (url, requests) in targets.items():
                rate, other = asyncio.run(_measure(url, requests, args.seconds, args.connections))
                rates[name].append(rate)
                errors[name] += other
    finally:
        parent.send("stop")
        server.join(timeout=60)
        if server.is_alive():
            server.terminate()

    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"simulator throughput ({args.rounds} rounds x {args.seconds:g} s, {args.connections} connections, "
          f"median requests/s)")
    if "bare" not in median:
        print("\n".join(f"  {name:<20} {rate:8.0f}/s" for name, rate in median.items()))
        return
    print(f"  bare Starlette JSON  {median['bare']:8.0f}/s")
    for name, target in (("read", 0.60), ("search", 0.40)):
        if name not in median:
            continue
        share = median[name] / median["bare"]
        verdict = "ok" if share >= target else "UNDER TARGET"
        print(f"  medplum {name:<12} {median[name]:8.0f}/s  {share:6.1%} of bare (target {target:.0%}: {verdict})")
    if any(errors.values()):
        print(f"  non-200 answers: {errors}")


if __name__ == "__main__":
    main()
