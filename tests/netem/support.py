"""Shared helpers for the network-fault tests: a Medplum simulator behind the emulated proxy, on the
virtual clock, and a way to time one request in virtual seconds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from harness.clock import VirtualClock
from harness.netem import NetemTransport, Toxic
from harness.netem.toxics import Stream, ToxicType
from simulators.medplum import MedplumSimulator
from simulators.transport import VirtualTransport
from tests.simulators.support import BASE_URL, bearer, get_token, make_medplum


@dataclass
class Rig:
    """A simulator, the emulated proxy in front of it, and a client going through the proxy."""

    sim: MedplumSimulator
    netem: NetemTransport
    client: httpx.AsyncClient
    clock: VirtualClock
    headers: dict[str, str]
    patient: str

    async def timed(self, method: str = "GET", path: str | None = None, **kwargs: object) -> tuple[float, object]:
        """(virtual seconds taken, response or the exception raised) for one request."""
        started = self.clock.monotonic()
        try:
            outcome: object = await self.client.request(method, path or f"/fhir/R4/Patient/{self.patient}",
                                                        headers=self.headers, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            outcome = exc
        return round(self.clock.monotonic() - started, 6), outcome


@asynccontextmanager
async def rig(seed: int = 1) -> AsyncIterator[Rig]:
    clock = VirtualClock()
    sim = make_medplum(clock=clock)
    [patient] = sim.seed_patients(1)
    netem = NetemTransport(VirtualTransport(sim.app), clock=clock, rng=random.Random(seed))
    async with httpx.AsyncClient(transport=netem, base_url=BASE_URL) as client:
        token = await get_token(client)
        yield Rig(sim, netem, client, clock, bearer(token), patient)


def toxic(type_: ToxicType, stream: Stream = "downstream", toxicity: float = 1.0, name: str | None = None,
          **attributes: int) -> Toxic:
    return Toxic(name=name or f"{type_}_{stream}", type=type_, stream=stream, toxicity=toxicity,
                 attributes=attributes)


async def later(clock: VirtualClock, seconds: float, action: object) -> asyncio.Task[None]:
    """Run the coroutine function `action` after `seconds` of virtual time, as a background task."""

    async def run() -> None:
        await clock.sleep(seconds)
        await action()  # type: ignore[operator]

    return asyncio.create_task(run())
