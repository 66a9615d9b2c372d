"""What the plugin's fixtures hand a test: a lab, a vendor simulator, the fault proxy, the integration service.

Each is started on an `EhrlabLoop` (see `loop`) and stopped when the loop closes at teardown. In virtual
mode the simulators and the service are mounted in-process (`VirtualTransport`, no sockets); in real mode
they are served by uvicorn on 127.0.0.1 and reached over HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from fastapi import FastAPI

from harness.journal import Journal
from harness.lab import Lab, Mode, VendorRuntime
from harness.netem import ToxiproxyApi
from harness.pytest_plugin.loop import EhrlabLoop
from harness.runner import journal_listener
from harness.service_cmd import DEMO_ORG, ServiceSecrets, Wired, wire_service
from harness.vendors import VENDORS, LabSecrets, SimulatorHandle, VendorClient
from integrations.clock import Clock
from integrations.events import EventListener, ignore_event
from simulators.server import serve
from simulators.transport import VirtualTransport

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LabHandle:
    """A started `harness.lab.Lab` and the journal its integration events go to (scenario time 0 = start)."""

    lab: Lab
    journal: Journal
    loop: EhrlabLoop

    @property
    def mode(self) -> Mode:
        return self.lab.mode

    @property
    def seed(self) -> int:
        return self.loop.seed

    @property
    def clock(self) -> Clock:
        return self.lab.clock

    @property
    def vendors(self) -> dict[str, VendorRuntime]:
        return self.lab.vendors

    def vendor(self, name: str) -> VendorRuntime:
        return self.lab.vendor(name)

    def run(self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        return self.loop.run(awaitable, timeout=timeout)


def start_lab(loop: EhrlabLoop, stack: AsyncExitStack, *, vendors: list[str], patients: int,
              toxiproxy_url: str | None, allow_remote: bool = False) -> LabHandle:
    async def build() -> tuple[Lab, Journal]:
        journal = Journal(loop.clock)
        lab = Lab(mode=loop.mode, clock=loop.clock, sources=loop.sources, vendors=vendors, patients=patients,
                  listener=journal_listener(journal), toxiproxy_url=toxiproxy_url, allow_remote=allow_remote)

        await stack.enter_async_context(lab)
        journal.restart()
        return lab, journal

    lab, journal = loop.run(build())
    return LabHandle(lab=lab, journal=journal, loop=loop)


@dataclass(frozen=True, slots=True)
class ServedSimulator:
    """One vendor simulator: in-process (virtual) or on loopback (real).

    `client` is an `httpx.AsyncClient` on the simulator's base URL with no credentials; `admin` one with the
    admin token (the chaos API under /admin). `fhir_url` and `token_url` are the vendor's FHIR base and
    token endpoint; `secrets` the lab client's credentials registered in the simulator.
    """

    vendor: str
    base_url: str
    fhir_url: str
    token_url: str
    client: httpx.AsyncClient
    admin: httpx.AsyncClient
    secrets: LabSecrets = field(repr=False)
    handle: SimulatorHandle
    patients: list[str]
    transport: httpx.AsyncBaseTransport
    loop: EhrlabLoop
    stack: AsyncExitStack = field(repr=False)

    def run(self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        return self.loop.run(awaitable, timeout=timeout)

    def vendor_client(self, listener: EventListener = ignore_event) -> VendorClient:
        """The integration's connector (auth flow, retry, breaker) for this simulator; closed at teardown."""

        async def build() -> VendorClient:
            client = VENDORS[self.vendor].client(base_url=self.base_url, transport=self.transport,
                                                 clock=self.loop.clock, sources=self.loop.sources,
                                                 secrets=self.secrets, listener=listener)
            self.stack.push_async_callback(client.aclose)
            return client

        return self.loop.run(build())


def start_simulator(loop: EhrlabLoop, stack: AsyncExitStack, vendor: str, *, patients: int) -> ServedSimulator:
    """Start `vendor`'s simulator with the same seed streams as the lab's (same data for the same seed)."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
    adapter = VENDORS[vendor]

    async def build() -> ServedSimulator:
        secrets = LabSecrets.generate(vendor, loop.sources.stream(f"secrets.{vendor}"))
        simulator = adapter.simulator(loop.clock, loop.sources.stream(f"simulator.{vendor}"), secrets)
        seeded = simulator.seed_patients(patients)
        transport: httpx.AsyncBaseTransport
        if loop.mode == "virtual":
            base_url = f"http://{vendor}.ehrlab.test"
            transport = VirtualTransport(simulator.app)
        else:
            base_url = await stack.enter_async_context(serve(simulator.app))
            transport = httpx.AsyncHTTPTransport()
        client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=None, trust_env=False)
        stack.push_async_callback(client.aclose)
        admin = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=None, trust_env=False,
                                  headers={"Authorization": f"Bearer {secrets.admin_token}"})
        stack.push_async_callback(admin.aclose)
        return ServedSimulator(vendor=vendor, base_url=base_url, fhir_url=f"{base_url}{adapter.fhir_path}",
                               token_url=f"{base_url}{adapter.token_path}", client=client, admin=admin,
                               secrets=secrets, handle=simulator, patients=seeded, transport=transport, loop=loop,
                               stack=stack)

    return loop.run(build())


@dataclass(frozen=True, slots=True)
class IntegrationService:
    """The integration service (`integrations.service`, FastAPI) wired by `harness.service_cmd.wire_service`
    against a Medplum simulator, with its queue worker and provider monitor running.

    `client` is an `httpx.AsyncClient` on the service (in-process in virtual mode, over loopback in real
    mode) without credentials; `operator_headers` and `api_headers` carry the service's own secrets.
    """

    wired: Wired
    app: FastAPI
    base_url: str
    client: httpx.AsyncClient
    secrets: ServiceSecrets = field(repr=False)
    medplum: ServedSimulator
    loop: EhrlabLoop
    org_id: str = DEMO_ORG

    @property
    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets.operator_token}"}

    def api_headers(self, org_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets.api_key}", "X-Org-ID": org_id or self.org_id}

    def run(self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        return self.loop.run(awaitable, timeout=timeout)


def start_service(loop: EhrlabLoop, stack: AsyncExitStack, medplum: ServedSimulator,
                  db_path: Path) -> IntegrationService:
    service_secrets = ServiceSecrets.generate()

    async def build() -> IntegrationService:
        wired = await stack.enter_async_context(wire_service(
            clock=loop.clock, sources=loop.sources, medplum_url=medplum.base_url, lab_secrets=medplum.secrets,
            transport=medplum.transport, db_path=db_path, service_secrets=service_secrets, keep_events=True))
        transport: httpx.AsyncBaseTransport
        if loop.mode == "virtual":
            base_url = "http://service.ehrlab.test"
            transport = VirtualTransport(wired.app)
        else:
            base_url = await stack.enter_async_context(serve(wired.app))
            transport = httpx.AsyncHTTPTransport()
        client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=None, trust_env=False)
        stack.push_async_callback(client.aclose)
        return IntegrationService(wired=wired, app=wired.app, base_url=base_url, client=client,
                                  secrets=service_secrets, medplum=medplum, loop=loop)

    return loop.run(build())


@dataclass(frozen=True, slots=True)
class ToxiproxyServer:
    """A Toxiproxy API: the embedded Toxiproxy-compatible server on 127.0.0.1, or the one at `TOXIPROXY_URL`.

    It runs on the real clock in its own thread whatever the lab's mode: use `http` (a synchronous
    `httpx.Client` on the API), toxiproxy-python (`Toxiproxy().update_api_consumer(host, port)`), or the
    lab's async client `api` through `run(...)`.
    """

    url: str
    host: str
    port: int
    external: bool
    api: ToxiproxyApi
    http: httpx.Client
    loop: EhrlabLoop

    def run(self, awaitable: Awaitable[T] | Callable[[], Awaitable[T]], *, timeout: float | None = 30.0) -> T:
        return self.loop.run(awaitable, timeout=timeout)

    def proxy_names(self) -> set[str]:
        response = self.http.get("/proxies")
        response.raise_for_status()
        return set(response.json())

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (`POST /reset`)."""
        self.http.post("/reset").raise_for_status()


def start_toxiproxy(loop: EhrlabLoop, external_url: str | None) -> ToxiproxyServer:
    """`loop` must be a real-mode loop of its own (unscaled: the server stands in for a real Toxiproxy)."""
    url = external_url
    if url is None:
        from simulators.toxiproxy import serve_toxiproxy

        url = loop.enter(serve_toxiproxy(clock=loop.clock, rng=loop.sources.stream("toxiproxy")))
    api = ToxiproxyApi(url)
    loop.stack.push_async_callback(api.aclose)
    http = httpx.Client(base_url=url, timeout=10.0, trust_env=False)
    parsed = httpx.URL(url)
    server = ToxiproxyServer(url=url.rstrip("/"), host=parsed.host, port=parsed.port or 80,
                             external=external_url is not None, api=api, http=http, loop=loop)
    loop.run(api.version())
    return server
