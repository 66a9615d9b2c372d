"""`ehrlab serve VENDOR...`: run simulators on loopback for local use and for other tools.

Prints each simulator's base URL, FHIR base, token URL, the lab client's credentials and the admin
token, then serves until interrupted. The seed decides the synthetic data and the credentials; by
default it is drawn at random and printed, so a session can be served again identically with
`--seed`.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from dataclasses import dataclass

from harness.clock import RealClock
from harness.errors import UsageError
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets
from simulators.server import serve


@dataclass(frozen=True, slots=True)
class Served:
    vendor: str
    base_url: str
    secrets: LabSecrets
    fhir_path: str
    token_path: str


def resolve_vendors(names: list[str]) -> list[str]:
    if "all" in names:
        return list(VENDORS)
    unknown = [n for n in names if n not in VENDORS]
    if unknown:
        raise UsageError(f"unknown vendor {unknown[0]!r} (known: {', '.join(VENDORS)}, all)")
    return list(dict.fromkeys(names))


def describe(served: list[Served], seed: int) -> str:
    lines = [f"ehrlab simulators (seed {seed}); Ctrl-C stops them", ""]
    for s in served:
        lines += [
            f"{s.vendor}:",
            f"  base URL     {s.base_url}",
            f"  FHIR base    {s.base_url}{s.fhir_path}",
            f"  token URL    {s.base_url}{s.token_path}",
            f"  client id    {s.secrets.client_id}",
            f"  secret       {s.secrets.client_secret}",
            f"  admin token  {s.secrets.admin_token}   (Authorization: Bearer ... on /admin)",
            "",
        ]
    return "\n".join(lines)


async def serve_vendors(names: list[str], *, host: str, port: int, seed: int, patients: int,
                        ready: asyncio.Event | None = None, out: list[Served] | None = None) -> None:
    """Serve until cancelled; `ready` is set once every simulator listens (for tests and tools)."""
    clock = RealClock()
    sources = RandomSource(seed)
    served: list[Served] = out if out is not None else []
    async with AsyncExitStack() as stack:
        for i, name in enumerate(names):
            adapter = VENDORS[name]
            secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
            simulator = adapter.simulator(clock, sources.stream(f"simulator.{name}"), secrets)
            simulator.seed_patients(patients)
            try:
                base_url = await stack.enter_async_context(serve(simulator.app, host=host,
                                                                 port=port + i if port else 0))
            except (OSError, ValueError) as exc:
                raise UsageError(f"cannot serve {name} on {host}:{port + i if port else 0}: {exc}") from None
            served.append(Served(name, base_url, secrets, getattr(adapter, "fhir_path", "/fhir/R4"),
                                 getattr(adapter, "token_path", "/oauth2/token")))
        print(describe(served, seed), flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()


def run(names: list[str], *, host: str, port: int, seed: int | None, patients: int) -> int:
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    chosen = seed if seed is not None else random.SystemRandom().getrandbits(31)
    try:
        asyncio.run(serve_vendors(resolve_vendors(names), host=host, port=port, seed=chosen, patients=patients))
    except KeyboardInterrupt:
        print("stopped")
    return 0
