"""The resilience layer in the lab (runbook 000_030ea53f0735abf7.txt §2, §3, §7, §8): for each vendor a
scenario names in `setup.resilience`, the vendor's connector behind a provider monitor (active health
checks every 30 s), the cached patient-context fallback and the vendor's feature flags
(`integrations.resilience.ResilientFhirClient`), exactly as the integration service wires Medplum's.

Workload operations `open_chart` and `record_vitals` go through it; steps `set_flag`,
`emergency_shutdown` and `staged_recovery` act on its flags (000 §8). The sync pipeline (`setup.sync`) has
its own layer for Medplum; a vendor has one layer, not two: naming medplum in both is refused at load.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from integrations.clock import Clock
from integrations.events import EventListener
from integrations.fhir import FhirConnector
from integrations.fhir.breaker import CircuitBreaker
from integrations.resilience import FeatureFlags, ProviderMonitor, ResilientFhirClient, search_probe
from integrations.resilience.recovery import RecoveryOutcome, RecoveryPlan, emergency_shutdown, staged_recovery


@dataclass
class ResilientVendor:
    vendor: str
    client: ResilientFhirClient
    flags: FeatureFlags
    monitor: ProviderMonitor
    clock: Clock
    recoveries: list[asyncio.Task[RecoveryOutcome]] = field(default_factory=list)

    def shutdown(self) -> None:
        emergency_shutdown(self.flags, self.vendor)

    def start_recovery(self, plan: RecoveryPlan) -> None:
        """000 §8 "Recovery from Emergency Shutdown", in the background: verify, reads, soak, writes, soak."""
        self.recoveries.append(asyncio.create_task(staged_recovery(self.flags, self.monitor, self.clock, plan)))

    async def close(self) -> None:
        for task in self.recoveries:
            task.cancel()
        await asyncio.gather(*self.recoveries, return_exceptions=True)
        await self.monitor.stop()


async def start_layer(stack: AsyncExitStack, vendor: str, *, connector: FhirConnector, breaker: CircuitBreaker,
                      clock: Clock, listener: EventListener) -> ResilientVendor:
    flags = FeatureFlags.for_vendors([vendor], listener=listener)
    monitor = ProviderMonitor(vendor, clock, breaker=breaker, probe=search_probe(connector), listener=listener)
    client = ResilientFhirClient(connector, clock=clock, flags=flags, monitor=monitor, listener=listener)
    monitor.start()
    layer = ResilientVendor(vendor=vendor, client=client, flags=flags, monitor=monitor, clock=clock)
    stack.push_async_callback(layer.close)
    return layer


__all__ = ["ResilientVendor", "start_layer"]
