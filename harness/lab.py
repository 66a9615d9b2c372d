"""The lab environment: simulators, the network between them and the integration, and the
integration's clients, in either mode.

- virtual: each simulator is mounted in-process (`VirtualTransport`, no sockets) on the virtual
  clock, behind `harness.netem.NetemTransport`, which emulates a Toxiproxy proxy (network faults);
- real: each simulator is served by uvicorn on an ephemeral 127.0.0.1 port, with a Toxiproxy proxy
  in front of it (one per vendor, `ehrlab-<vendor>-<simulator port>`, listening on an ephemeral
  127.0.0.1 port); the integration's connector talks to the proxy over real HTTP, on the real clock.
  The proxy server is a real Toxiproxy when `TOXIPROXY_URL` is set (e.g. `http://127.0.0.1:8474`),
  else the embedded Toxiproxy-compatible server (`simulators.toxiproxy.serve_toxiproxy`). A Toxiproxy
  outside loopback is refused when the lab is built (`harness.guard`), unless `allow_remote=True`.
  Under `--time-scale` toxics keep costing scenario time: the embedded server runs on the lab's own
  (scaled) clock; a real Toxiproxy sleeps on the wall clock, so its toxics are sent scaled
  (`Toxic.faster`: durations divided, bandwidth multiplied by the scale).

Either way `VendorRuntime.network` is the `NetworkControl` the fault driver adds toxics on, and
`admin`, the simulator's admin/chaos client, talks to the simulator directly (never through the
proxy, so a network fault cannot cut the lab off from its own fault switches), the way a game-day
operator's tooling would call it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import httpx

from harness import guard
from harness.clock import RealClock
from harness.errors import LabError, UsageError
from harness.guard import TOXIPROXY_URL_ENV as TOXIPROXY_URL_ENV  # re-exported: the guard owns it
from harness.guard import toxiproxy_url_from_env as toxiproxy_url_from_env
from harness.netem import NetemTransport, NetworkControl, NetworkControlError, ToxiproxyApi, ToxiproxyProxy
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, SimulatorHandle, VendorClient
from integrations.clock import Clock
from integrations.events import EventListener
from simulators.server import serve
from simulators.transport import VirtualTransport

if TYPE_CHECKING:
    from harness.failover_layer import FailoverLayer
    from harness.pipeline import Pipeline
    from harness.resilience_layer import ResilientVendor
    from harness.scenario.model import FailoverSetup, SyncSetup
    from harness.sut.model import SutHttpStream, SutSettings
    from harness.sut.process import RunningSut

Mode = Literal["virtual", "real"]

@dataclass(frozen=True, slots=True)
class VendorRuntime:
    name: str
    base_url: str  # the simulator itself (admin/chaos API)
    proxy_url: str  # where the integration connects: the proxy in front of the simulator
    client: VendorClient
    admin: httpx.AsyncClient
    network: NetworkControl
    patients: list[str]
    secrets: LabSecrets  # the lab's credentials for this vendor (never journaled; repr masks them)
    transport: httpx.AsyncBaseTransport  # how the integration reaches the vendor (through its proxy)
    simulator: SimulatorHandle  # the vendor's server itself, for what the lab inspects at the end of a run


class Lab:
    def __init__(self, *, mode: Mode, clock: Clock, sources: RandomSource, vendors: list[str],
                 patients: int, listener: EventListener, toxiproxy_url: str | None = None,
                 sync: SyncSetup | None = None, resilience: tuple[str, ...] = (),
                 failover: FailoverSetup | None = None, allow_remote: bool = False,
                 sut: SutSettings | None = None, seed: int = 0) -> None:
        self.mode = mode
        self.clock = clock
        self._sources = sources
        self._vendor_names = vendors
        self._patients = patients
        self._listener = listener
        self._toxiproxy_url: str | None = None
        if mode == "real":  # the loopback guard, before any connection (UsageError: exit 2)
            if toxiproxy_url is None:
                self._toxiproxy_url = guard.toxiproxy_url(allow_remote=allow_remote)
            else:
                guard.check_target("the Toxiproxy URL", toxiproxy_url, allow_remote=allow_remote)
                self._toxiproxy_url = toxiproxy_url
        self._toxiproxy: ToxiproxyApi | None = None
        self._allow_remote = allow_remote
        self._sut_settings, self._seed = sut, seed
        self.sut: RunningSut | None = None  # the external SUT, started (or attached to) last (`harness.sut`)
        self.sut_log: Path | None = None  # its stdout and stderr, kept after the run
        self._sut_client: httpx.AsyncClient | None = None
        if sut is not None:  # before any connection, like the Toxiproxy URL (UsageError: exit 2)
            from harness.sut.process import check_url

            if mode != "real":
                raise UsageError("a scenario with a sut: section runs in real mode only")
            if isinstance(clock, RealClock) and clock.scale != 1.0:
                raise UsageError("a scenario with a sut: section runs at --time-scale 1 only")
            check_url(sut, allow_remote=allow_remote)
        self._toxic_scale = 1.0  # how much faster than the proxy's clock the scenario's runs
        self._stack = AsyncExitStack()
        self.vendors: dict[str, VendorRuntime] = {}
        self._sync = sync
        self.pipeline: Pipeline | None = None
        self._resilience = resilience
        self.resilient: dict[str, ResilientVendor] = {}
        self._failover = failover
        self.failover: FailoverLayer | None = None

    async def __aenter__(self) -> Lab:
        try:
            for name in self._vendor_names:
                self.vendors[name] = await self._start(name)
            for name in self._resilience:
                from harness.resilience_layer import start_layer

                runtime = self.vendors[name]
                self.resilient[name] = await start_layer(
                    self._stack, name, connector=runtime.client.connector, breaker=runtime.client.breaker,
                    clock=self.clock, listener=self._listener)
            if self._failover is not None:
                from harness.failover_layer import start_failover

                self.failover = await start_failover(self._stack, self._failover, self,
                                                     self._sources.stream("failover"), self._listener)
            if self._sync is not None:
                from harness.pipeline import start_pipeline  # only scenarios with setup.sync wire the pipeline

                self.pipeline = await start_pipeline(self._stack, self._sync, clock=self.clock, sources=self._sources,
                                                     medplum=self.vendors["medplum"], listener=self._listener)
            if self._sut_settings is not None:
                await self._start_sut(self._sut_settings)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start_sut(self, settings: SutSettings) -> None:
        """The external SUT, after the simulators and proxies: its environment names their URLs (through the
        proxies, so faults reach it) and the lab's credentials."""
        import tempfile

        from harness.sut.http import open_client
        from harness.sut.process import start_sut

        values = {"seed": str(self._seed)}
        secrets: list[str] = []
        for name, runtime in self.vendors.items():
            adapter = VENDORS[name]
            values.update({f"{name}.base_url": f"{runtime.proxy_url}{adapter.fhir_path}",
                           f"{name}.token_url": f"{runtime.proxy_url}{adapter.token_path}",
                           f"{name}.client_id": runtime.secrets.client_id,
                           f"{name}.client_secret": runtime.secrets.client_secret})
            secrets += [runtime.secrets.client_secret, runtime.secrets.admin_token]
        scratch = Path(tempfile.mkdtemp(prefix="ehrlab-sut-"))  # kept after the run: the SUT's files, its log
        values["scratch"] = str(scratch)
        self.sut_log = scratch / "sut.log" if settings.command is not None else None
        self.sut = await start_sut(self._stack, settings, values=values, scratch=scratch, clock=self.clock,
                                   secrets=tuple(secrets), allow_remote=self._allow_remote)
        self._sut_client = await open_client(self._stack, self.sut)

    def sut_request(self, stream: SutHttpStream) -> Callable[[], Awaitable[None]]:
        """One `sut_http` stream's operation (`harness.sut.http`)."""
        from harness.sut.http import request_maker

        if self.sut is None or self._sut_client is None:
            raise LabError("a sut_http stream, but no system under test was started")
        return request_maker(self._sut_client, stream, self.sut)

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
        network: NetworkControl
        if self.mode == "virtual":
            base_url = proxy_url = f"http://{name}.ehrlab.test"
            netem = NetemTransport(VirtualTransport(simulator.app), clock=self.clock,
                                   rng=self._sources.stream(f"netem.{name}"))
            transport = network = netem
            admin_transport: httpx.AsyncBaseTransport = VirtualTransport(simulator.app)
        else:
            try:
                base_url = await self._stack.enter_async_context(serve(simulator.app))
            except OSError as exc:
                raise LabError(f"could not serve the {name} simulator on 127.0.0.1: {exc}") from exc
            proxy = await self._proxy_for(name, base_url)
            network, proxy_url = proxy, proxy.url
            transport = httpx.AsyncHTTPTransport()
            admin_transport = httpx.AsyncHTTPTransport()
        client = adapter.client(base_url=proxy_url, transport=transport, clock=self.clock, sources=self._sources,
                                secrets=secrets, listener=self._listener)
        self._stack.push_async_callback(client.aclose)  # Unity retires its token, then connector and breaker close
        admin = httpx.AsyncClient(transport=admin_transport, base_url=base_url, timeout=None,
                                  headers={"Authorization": f"Bearer {secrets.admin_token}"})
        self._stack.push_async_callback(admin.aclose)
        return VendorRuntime(name=name, base_url=base_url, proxy_url=proxy_url, client=client, admin=admin,
                             network=network, patients=patients, secrets=secrets, transport=transport,
                             simulator=simulator)

    async def _proxy_for(self, name: str, simulator_url: str) -> ToxiproxyProxy:
        api = await self._toxiproxy_api()
        upstream = httpx.URL(simulator_url)
        try:
            info = await api.create_proxy(f"ehrlab-{name}-{upstream.port}",
                                          upstream=f"{upstream.host}:{upstream.port}")
        except NetworkControlError as exc:
            raise LabError(f"could not create the {name} proxy: {exc}") from exc
        proxy = api.proxy(info, scale=self._toxic_scale)
        self._stack.push_async_callback(self._delete_proxy, proxy)
        return proxy

    @staticmethod
    async def _delete_proxy(proxy: ToxiproxyProxy) -> None:
        with suppress(NetworkControlError):  # the server is gone, or the proxy was removed by hand
            await proxy.delete()

    async def _toxiproxy_api(self) -> ToxiproxyApi:
        if self._toxiproxy is not None:
            return self._toxiproxy
        url = self._toxiproxy_url
        if url is None:
            from simulators.toxiproxy import serve_toxiproxy  # real mode only: virtual runs never import it

            try:  # on the lab's own clock: its toxics run in scenario time, as in virtual mode
                served: str = await self._stack.enter_async_context(
                    serve_toxiproxy(clock=self.clock, rng=self._sources.stream("toxiproxy")))
            except OSError as exc:
                raise LabError(f"could not start the embedded Toxiproxy on 127.0.0.1: {exc}") from exc
            url = served
        elif isinstance(self.clock, RealClock):  # a real Toxiproxy sleeps on the wall clock
            self._toxic_scale = self.clock.scale
        api = ToxiproxyApi(url)
        self._stack.push_async_callback(api.aclose)
        try:
            await api.version()
        except NetworkControlError as exc:
            raise LabError(f"no Toxiproxy answering: {exc}") from exc
        self._toxiproxy = api
        return api
