"""Benchmarks: ratios against a baseline measured in the same run (the machines are shared and noisy).

    .venv/bin/python benchmarks/run_all.py [--repeat 3]
    .venv/bin/python benchmarks/run_all.py --all [--quick]    # `make bench`: every benchmark, one table

`--all` adds, in the same run, everything in `benchmarks/suite.py` (scenario-library compression,
simulator vs bare Starlette, proxy vs direct, queue drain per store, locust workers) and prints one table.

Baseline: an authenticated FHIR read sent straight through httpx to the in-process simulator (the
floor any virtual-mode request pays). Measured against it, best of `--repeat`:
- the integration stack (connector + token cache + breaker + retry) per read;
- a virtual-mode scenario, per workload operation, and its time compression (scenario s / wall s);
- a real-mode read over loopback sockets (uvicorn + httpx), per read.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from harness.clock import RealClock, VirtualClock, run_virtual
from harness.journal import OperationEvent
from harness.rng import RandomSource
from harness.runner import run_scenario
from harness.scenario import load_scenario
from harness.vendors import VENDORS, LabSecrets
from integrations.clock import Clock
from integrations.events import ignore_event
from simulators.server import serve
from simulators.transport import VirtualTransport

REPO = Path(__file__).resolve().parents[1]
N = 1000


def best(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


async def _raw_reads(clock: Clock, transport_for: Callable[[object], Awaitable[tuple[httpx.AsyncBaseTransport, str]]],
                     n: int) -> float:
    sources = RandomSource(1)
    secrets = LabSecrets.generate("medplum", sources.stream("s"))
    simulator = VENDORS["medplum"].simulator(clock, sources.stream("sim"), secrets)
    [patient] = simulator.seed_patients(1)
    transport, base = await transport_for(simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        token = (await client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": secrets.client_id,
            "client_secret": secrets.client_secret})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        for _ in range(n):
            (await client.get(f"/fhir/R4/Patient/{patient}", headers=headers)).raise_for_status()
        return (time.perf_counter() - started) / n


def baseline_read() -> float:
    async def virtual(app: object) -> tuple[httpx.AsyncBaseTransport, str]:
        return VirtualTransport(app), "http://medplum.test"  # type: ignore[arg-type]

    return run_virtual(lambda: _raw_reads(VirtualClock(), virtual, N))


def connector_read() -> float:
    async def main() -> float:
        clock = VirtualClock()
        sources = RandomSource(1)
        secrets = LabSecrets.generate("medplum", sources.stream("s"))
        adapter = VENDORS["medplum"]
        simulator = adapter.simulator(clock, sources.stream("sim"), secrets)
        [patient] = simulator.seed_patients(1)
        client = adapter.client(base_url="http://medplum.test", transport=VirtualTransport(simulator.app),
                                clock=clock, sources=sources, secrets=secrets, listener=ignore_event)
        await client.connector.read("Patient", patient)
        started = time.perf_counter()
        for _ in range(N):
            await client.connector.read("Patient", patient)
        elapsed = (time.perf_counter() - started) / N
        await client.connector.aclose()
        await client.breaker.aclose()
        return elapsed

    return run_virtual(main)


def real_read() -> float:
    stack: list[object] = []

    async def real(app: object) -> tuple[httpx.AsyncBaseTransport, str]:
        context = serve(app)  # type: ignore[arg-type]
        stack.append(context)
        base = await context.__aenter__()
        return httpx.AsyncHTTPTransport(), base

    async def main() -> float:
        try:
            return await _raw_reads(RealClock(), real, N // 4)
        finally:
            for context in stack:
                await context.__aexit__(None, None, None)  # type: ignore[attr-defined]

    return asyncio.run(main())


def scenario_per_op(name: str) -> tuple[float, float]:
    path = REPO / name
    scenario = load_scenario(path)
    started = time.perf_counter()
    run = run_scenario(scenario, file=path, mode="virtual", seed=1)
    wall = time.perf_counter() - started
    ops = len(run.journal.of(OperationEvent))
    return wall / ops, scenario.duration / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="run every benchmark and print one table of ratios")
    parser.add_argument("--quick", action="store_true", help="with --all: shorter phases (noisier figures)")
    args = parser.parse_args()
    random.seed(0)
    base = best(args.repeat, baseline_read)
    rows = [("raw read, in-process (baseline)", base, 1.0, "")]
    stack = best(args.repeat, connector_read)
    rows.append(("read through the integration stack", stack, stack / base, ""))
    for name in ("scenarios/medplum-outage.yaml", "tests/data/hour-long.yaml"):
        results = [scenario_per_op(name) for _ in range(args.repeat)]
        per_op, compression = min(r[0] for r in results), max(r[1] for r in results)
        rows.append((f"{Path(name).stem}: per operation", per_op, per_op / base,
                     f"{compression:,.0f}x faster than real time"))
    real = best(args.repeat, real_read)
    rows.append(("raw read over loopback sockets (real mode)", real, real / base, ""))
    if args.all:
        import platform
        import sys

        sys.path.insert(0, str(REPO))  # benchmarks/ is a folder of scripts: import its sibling as a namespace package

        from benchmarks.suite import Row, run_everything, table

        combined = [Row("in-process", label, f"{seconds * 1e6:,.0f} us/call",
                        "" if ratio == 1.0 else f"raw read {base * 1e6:,.0f} us", note or f"{ratio:.2f}x")
                    for label, seconds, ratio, note in rows]
        combined += run_everything(quick=args.quick)
        print(f"ehrlab benchmarks ({platform.python_implementation()} {platform.python_version()}; ratios against "
              "baselines measured in the same run)")
        print(table(combined))
        return
    print(f"{'measure':<45} {'per call':>10} {'vs baseline':>12}  note")
    for label, seconds, ratio, note in rows:
        print(f"{label:<45} {seconds * 1e6:>8.0f}us {ratio:>11.2f}x  {note}")


if __name__ == "__main__":
    main()
