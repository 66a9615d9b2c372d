"""A vendor simulator in process with the integration's client built exactly as the lab builds it
(`harness.vendors.VENDORS`), plus the admin API, on the virtual clock; and a transport wrapper that can
act between requests (e.g. force token expiry after the n-th FHIR page)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from harness.clock import VirtualClock
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, VendorClient
from integrations.events import IntegrationEvent
from simulators.transport import VirtualTransport

AfterHook = Callable[[httpx.Request, httpx.Response], Awaitable[None]]
E = TypeVar("E")


def of_type(kind: type[E], events: Iterable[object]) -> list[E]:
    """The events of one type, typed; `events` may be events or the fake kit's (time, event) pairs."""
    items = (e[1] if isinstance(e, tuple) else e for e in events)
    return [e for e in items if isinstance(e, kind)]


@dataclass
class Recording(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, records (method, path, status) and runs `after` on every answer."""

    inner: httpx.AsyncBaseTransport
    after: AfterHook | None = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.seen.append((request.method, request.url.path, response.status_code))
        if self.after is not None:
            await self.after(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class VendorLab:
    name: str
    clock: VirtualClock
    client: VendorClient
    transport: Recording
    admin: httpx.AsyncClient
    patients: list[str]
    events: list[IntegrationEvent]
    base_url: str

    async def expire_tokens(self) -> int:
        response = await self.admin.post("/admin/tokens/expire", json={})
        response.raise_for_status()
        expired = response.json()["expired"]
        assert isinstance(expired, int)
        return expired


@asynccontextmanager
async def vendor_lab(name: str, *, patients: int = 0, seed: int = 11) -> AsyncIterator[VendorLab]:
    """Build inside `run_virtual`."""
    clock = VirtualClock()
    adapter = VENDORS[name]
    sources = RandomSource(seed)
    secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
    simulator = adapter.simulator(clock, sources.stream(f"simulator.{name}"), secrets)
    seeded = simulator.seed_patients(patients) if patients else []
    base_url = f"http://{name}.ehrlab.test"
    transport = Recording(VirtualTransport(simulator.app))
    events: list[IntegrationEvent] = []

    def listen(event: IntegrationEvent) -> None:
        events.append(event)

    client = adapter.client(base_url=base_url, transport=transport, clock=clock, sources=sources, secrets=secrets,
                            listener=listen)
    admin = httpx.AsyncClient(transport=VirtualTransport(simulator.app), base_url=base_url,
                              headers={"Authorization": f"Bearer {secrets.admin_token}"})
    try:
        yield VendorLab(name=name, clock=clock, client=client, transport=transport, admin=admin, patients=seeded,
                        events=events, base_url=base_url)
    finally:
        await admin.aclose()
        await client.connector.aclose()
        await client.breaker.aclose()
