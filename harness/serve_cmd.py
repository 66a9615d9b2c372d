"""`ehrlab serve VENDOR...`: run simulators on loopback for local use and for other tools.

Prints each simulator's base URL, FHIR base, token URL, the lab client's credentials (for Epic, the
path of a private JWK written mode 0600 to a temporary folder removed on exit) and the admin token,
then serves until Ctrl-C or SIGTERM (either stops the servers and removes the key's folder; exit 0).
The seed decides the synthetic data and the credentials; by default it is drawn at random and printed,
so a session can be served again identically with `--seed`.

Loopback only, unless the caller opts in to every interface (`--host 0.0.0.0` with `--allow-any-host`,
or `EHRLAB_CONTAINER=1` in the environment): inside a container the simulator must be reachable from
the container network (docker-compose.yml), and that namespace is the container's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.clock import RealClock
from harness.errors import UsageError
from harness.guard import CONTAINER_ENV as CONTAINER_ENV  # re-exported: the guard owns the bind rule
from harness.guard import any_host_allowed as any_host_allowed
from harness.guard import check_bind
from harness.rng import RandomSource
from harness.shutdown import run_until_stopped
from harness.vendors import VENDORS, LabSecrets
from simulators.server import serve


@dataclass(frozen=True, slots=True)
class Served:
    vendor: str
    base_url: str
    secrets: LabSecrets
    fhir_path: str
    token_path: str
    key_file: Path | None = None


def write_private_jwk(directory: Path, vendor: str, secrets: LabSecrets) -> Path | None:
    """Epic authenticates clients with a signed JWT: hand the user the private key, readable by them only."""
    if secrets.signing_key is None:
        return None
    path = directory / f"{vendor}-private-jwk.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(dict(secrets.signing_key.as_dict(private=True)), handle)
    return path


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
        ]
        if s.vendor == "epic":
            lines += [f"  private key  {s.key_file}  (kid {s.secrets.key_id}, ES384: sign a client assertion)"]
        else:
            lines += [f"  secret       {s.secrets.client_secret}"]
        if s.vendor == "allscripts":
            lines += [f"  Unity API    {s.base_url}/Unity/UnityService.svc/json  (GetToken with the same id/secret)"]
        lines += [f"  admin token  {s.secrets.admin_token}   (Authorization: Bearer ... on /admin)", ""]
    return "\n".join(lines)


async def serve_vendors(names: list[str], *, host: str, port: int, seed: int, patients: int,
                        ready: asyncio.Event | None = None, out: list[Served] | None = None,
                        any_host: bool = False) -> None:
    """Serve until cancelled; `ready` is set once every simulator listens (for tests and tools)."""
    clock = RealClock()
    sources = RandomSource(seed)
    served: list[Served] = out if out is not None else []
    async with AsyncExitStack() as stack:
        key_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ehrlab-keys-")))
        for i, name in enumerate(names):
            adapter = VENDORS[name]
            secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
            simulator = adapter.simulator(clock, sources.stream(f"simulator.{name}"), secrets)
            simulator.seed_patients(patients)
            try:
                base_url = await stack.enter_async_context(serve(simulator.app, host=host,
                                                                 port=port + i if port else 0, any_host=any_host))
            except (OSError, ValueError) as exc:
                raise UsageError(f"cannot serve {name} on {host}:{port + i if port else 0}: {exc}") from None
            key_file = write_private_jwk(key_dir, name, secrets) if name == "epic" else None
            served.append(Served(name, base_url, secrets, adapter.fhir_path, adapter.token_path, key_file))
        print(describe(served, seed), flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()


def run(names: list[str], *, host: str, port: int, seed: int | None, patients: int,
        allow_any_host: bool = False) -> int:
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    any_host = any_host_allowed(allow_any_host)
    check_bind(host, any_host=any_host)
    vendors = resolve_vendors(names)
    chosen = seed if seed is not None else random.SystemRandom().getrandbits(31)
    # Ctrl-C and SIGTERM alike: the servers stop and the private key's folder is removed, then exit 0
    if run_until_stopped(serve_vendors(vendors, host=host, port=port, seed=chosen, patients=patients,
                                       any_host=any_host)) is not None:
        print("stopped", flush=True)
    return 0
