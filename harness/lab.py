"""The lab environment: simulators, transports and the integration's clients, in either mode.

- virtual: each simulator is mounted in-process (`VirtualTransport`, no sockets) on the virtual clock;
- real: each simulator is served by uvicorn on an ephemeral 127.0.0.1 port and the integration talks
  to it over real HTTP, on the real clock.

Faults reach a simulator through its admin API over the same transport the integration uses, the
way a game-day operator's tooling would call it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import httpx

from harness.errors import LabError
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, VendorClient
from integrations.clock import Clock
from integrations.events import EventListener
from simulators.server import serve
from simulators.transport import VirtualTransport

Mode = Literal["virtual", "real"]


@dataclass(frozen=True, slots=True)
class VendorRuntime:
    name: str
    base_url: str
    client: VendorClient
    admin: httpx.AsyncClient
    patients: list[str]


class Lab:
    def __init__(self, *, mode: Mode, clock: Clock, sources: RandomSource, vendors: list[str],
                 patients: int, listener: EventListener) -> None:
        self.mode = mode
        self.clock = clock
        self._sources = sources
        self._vendor_names = vendors
        self._patients = patients
        self._listener = listener
        self._stack = AsyncExitStack()
        self.vendors: dict[str, VendorRuntime] = {}

    async def __aenter__(self) -> Lab:
        try:
            for name in self._vendor_names:
                self.vendors[name] = await self._start(name)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def vendor(self, name: str) -> VendorRuntime:
        return self.vendors[name]

    async def _start(self, name: str) -> VendorRuntime:
        adapter = VENDORS[name]
        secrets = LabSecrets.generate(name, self._sources.stream(f"secrets.{name}"))
        simulator = adapter.simulator(self.clock, self._sources.stream(f"simulator.{name}"), secrets)
        patients = simulator.seed_patients(self._patients)
        transport: httpx.AsyncBaseTransport
        if self.mode == "virtual":
            base_url = f"http://{name}.ehrlab.test"
            transport = VirtualTransport(simulator.app)
            admin_transport: httpx.AsyncBaseTransport = VirtualTransport(simulator.app)
        else:
            try:
                base_url = await self._stack.enter_async_context(serve(simulator.app))
            except OSError as exc:
                raise LabError(f"could not serve the {name} simulator on 127.0.0.1: {exc}") from exc
            transport = httpx.AsyncHTTPTransport()
            admin_transport = httpx.AsyncHTTPTransport()
        client = adapter.client(base_url=base_url, transport=transport, clock=self.clock, sources=self._sources,
                                secrets=secrets, listener=self._listener)
        self._stack.push_async_callback(client.breaker.aclose)
        self._stack.push_async_callback(client.connector.aclose)
        admin = httpx.AsyncClient(transport=admin_transport, base_url=base_url, timeout=None,
                                  headers={"Authorization": f"Bearer {secrets.admin_token}"})
        self._stack.push_async_callback(admin.aclose)
        return VendorRuntime(name=name, base_url=base_url, client=client, admin=admin, patients=patients)
