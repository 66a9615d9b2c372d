"""The registry of configured EHR systems (runbook `004_bc3882054056792c.txt`, "Multi-Vendor Support",
"Connection Management"): one client per system, built from typed configuration, each behind its own
connection-pool limit.

```python
registry = SystemRegistry.build(load_registry_config(settings), clock=clock, rng=rng, listener=listener)
async with registry:
    epic = registry.get("epic_prod")          # RegisteredSystem: config, client, breaker, pool
    patient = await epic.client.read("Patient", "e123")
    registry.status()                         # breaker state and pool figures per system
```

`build` validates a raw mapping (`ConfigError` on any problem), then, in configuration order, gives
each system its transport (`transport_for(system)`; default: httpx's socket pool with the system's
limits), wrapped in `PoolLimitedTransport`, and its client (`connector_factory`; default
`build_connector`), with an rng stream forked from `rng` in that same order, so a seed fixes every
system's draws. Configuration order is priority order: failover tries the other systems in it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from integrations.clock import Clock
from integrations.events import BreakerState, EventListener, ignore_event
from integrations.fhir.credentials import StaticCredentials
from integrations.systems.clients import BreakerView, ConnectorFactory, FhirClient, SystemClient, build_connector
from integrations.systems.config import RegistryConfig, SystemConfig, Vendor, load_registry_config
from integrations.systems.errors import ConfigError, ConfigProblem, UnknownSystem
from integrations.systems.pool import PoolLimitedTransport, PoolStats, http_transport

#: The transport a system's client sends through, before pool limiting (virtual mode: an in-process one).
TransportFactory = Callable[[SystemConfig], httpx.AsyncBaseTransport]

#: Breaker states in which every call is refused (FORCED_OPEN where the breaker offers it, as resilience4j does).
_REFUSING = frozenset(s for s in BreakerState if s.value in ("OPEN", "FORCED_OPEN"))


def refuses_calls(state: BreakerState) -> bool:
    """Whether a breaker in `state` refuses every call (nothing would be sent)."""
    return state in _REFUSING


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """One system's state for a status page (runbook 004 "Health Monitoring" names vendor and connectivity;
    latency and uptime belong to the provider monitor)."""

    system_id: str
    vendor: Vendor
    breaker_state: BreakerState
    pool: PoolStats

    @property
    def available(self) -> bool:
        """The breaker lets calls through (not OPEN, not forced open)."""
        return not refuses_calls(self.breaker_state)


@dataclass(frozen=True, slots=True, eq=False)
class RegisteredSystem:
    config: SystemConfig
    client: FhirClient
    breaker: BreakerView
    pool: PoolLimitedTransport
    _handle: SystemClient

    def __repr__(self) -> str:
        return f"RegisteredSystem(id={self.id!r}, vendor={self.vendor.value!r})"

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def vendor(self) -> Vendor:
        return self.config.vendor

    @property
    def credentials(self) -> StaticCredentials | None:
        """Where the client reads its credentials: `deploy` a new one, `retire` a revoked one (no restart)."""
        return self._handle.credentials

    def status(self) -> SystemStatus:
        return SystemStatus(system_id=self.id, vendor=self.vendor, breaker_state=self.breaker.state,
                            pool=self.pool.stats())

    async def aclose(self) -> None:
        await self._handle.aclose()


class SystemRegistry:
    """The configured systems, by id, in priority order; see the module docstring."""

    def __init__(self, systems: tuple[RegisteredSystem, ...]) -> None:
        ids = [s.id for s in systems]
        if len(set(ids)) != len(ids):
            raise ValueError("system ids must be unique")
        self._systems = {s.id: s for s in systems}

    def __repr__(self) -> str:
        return f"SystemRegistry(systems={list(self._systems)!r})"

    @classmethod
    def build(cls, config: RegistryConfig | Mapping[str, object], *, clock: Clock, rng: random.Random,
              transport_for: TransportFactory = http_transport, listener: EventListener = ignore_event,
              connector_factory: ConnectorFactory = build_connector) -> SystemRegistry:
        checked = config if isinstance(config, RegistryConfig) else load_registry_config(config)
        built: list[RegisteredSystem] = []
        for index, system in enumerate(checked.systems):
            system_rng = random.Random(rng.getrandbits(64))
            pool = PoolLimitedTransport(transport_for(system), system.limits)
            try:
                handle = connector_factory(system, transport=pool, clock=clock, rng=system_rng, listener=listener)
            except ValueError as exc:  # e.g. a key the connector's auth refuses; the message names no secret
                raise ConfigError((ConfigProblem(field=f"systems.{index}", reason=str(exc)),)) from None
            built.append(RegisteredSystem(config=system, client=handle.client, breaker=handle.breaker, pool=pool,
                                          _handle=handle))
        return cls(tuple(built))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._systems)

    def get(self, system_id: str) -> RegisteredSystem:
        try:
            return self._systems[system_id]
        except KeyError:
            raise UnknownSystem(system_id, self.ids) from None

    def others(self, system_id: str) -> tuple[RegisteredSystem, ...]:
        """Every system but `system_id`, in priority order."""
        self.get(system_id)
        return tuple(s for s in self._systems.values() if s.id != system_id)

    def __iter__(self) -> Iterator[RegisteredSystem]:
        return iter(tuple(self._systems.values()))

    def __len__(self) -> int:
        return len(self._systems)

    def __contains__(self, system_id: object) -> bool:
        return system_id in self._systems

    def status(self) -> tuple[SystemStatus, ...]:
        return tuple(s.status() for s in self._systems.values())

    async def aclose(self) -> None:
        """Close every system's client (each one even if another's close fails; the first error is raised)."""
        first: BaseException | None = None
        for system in self._systems.values():
            try:
                await system.aclose()
            except Exception as exc:  # keep closing the others
                first = first or exc
        if first is not None:
            raise first

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
