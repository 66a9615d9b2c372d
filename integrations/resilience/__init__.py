"""Resilience around one provider's FHIR connector: provider monitor, fallback to cached patient
context, feature flags and staged recovery (runbook `000_030ea53f0735abf7.txt §2, §3, §7, §8`;
runbook `004_bc3882054056792c.txt` "Health Monitoring", "Caching"). The circuit breaker itself is
`integrations.fhir.breaker.CircuitBreaker` (with `force_open()`, `disable()`, `reset()`).

Wiring, inside the running event loop:

```python
flags = FeatureFlags.for_vendors(["epic", "cerner"], listener=listener)  # epic_fhir_write, epic_fhir_read_only ...
monitor = ProviderMonitor("epic", clock, breaker=connector.breaker, probe=search_probe(connector),
                          listener=listener)
client = ResilientFhirClient(connector, clock=clock, flags=flags, monitor=monitor, listener=listener)
monitor.start()                                  # active health checks every 30 s, on the clock
served = await client.read("Patient", "123")     # Served(value=FhirResource, degraded=False, age_s=None)
client.status()                                  # ProviderStatus(health=HEALTHY, connected=True, ...)
await monitor.stop()
```

The small API other layers use (e.g. multi-system failover):

- `ProviderMonitor.health -> HealthStatus` and `.status() -> ProviderStatus` (vendor, health, connected,
  healthy, response_time_ms, p95_latency_ms, success_rate, samples, uptime_percentage, error_count,
  breaker_state, last_check_at, fallback_active); `.record(latency_s, error)` for calls made elsewhere;
  `await .check_health()`; `.start()` / `await .stop()`; `.subscribe(observer)`.
- `ResilientFhirClient.read / search / search_all -> Served[...]` (`.value`, `.degraded`, `.age_s`),
  `.create / .update -> FhirResource`, `.status()`, `.fallback_active`. Every method takes `user=`
  for per-user flag overrides.
- `FeatureFlags.is_enabled(flag, user=None)`, `.update(flag, enabled)`, `.update_many([FlagUpdate])`,
  `.set_user_override(user, flag, enabled)`, `.clear_user_override(user, flag)`; names from
  `read_flag(vendor)` / `write_flag(vendor)`.
- `emergency_shutdown(flags, vendor)`, `await staged_recovery(flags, monitor, clock, RecoveryPlan())`.

Events (all through the injected listener, each a journal event in the lab): `ProviderHealthChanged`,
`DegradationActivated` / `DegradationCleared`, `FeatureFlagChanged`, and the breaker's
`BreakerTransitioned` (`manual=True` for operator actions). None carries a patient identifier, a
user id, a token or a resource. Errors: `integrations.resilience.errors` (a branch of `ConnectorError`).
"""

from integrations.resilience.client import ResilientFhirClient, Served
from integrations.resilience.errors import (
    EhrUnavailable,
    FeatureDisabled,
    ResilienceError,
    UnknownFeatureFlag,
    WritesDisabled,
)
from integrations.resilience.fallback import DEFAULT_TTL_S, Degradation, Hit, PatientContextCache, TtlCache
from integrations.resilience.flags import FeatureFlags, FlagUpdate, read_flag, user_ref, write_flag
from integrations.resilience.monitor import (
    HealthCheckResult,
    HealthProbe,
    MonitorConfig,
    ProviderMonitor,
    ProviderStatus,
    breaker_band,
    latency_band,
    search_probe,
    success_band,
)
from integrations.resilience.recovery import RecoveryOutcome, RecoveryPlan, emergency_shutdown, staged_recovery

__all__ = [
    "DEFAULT_TTL_S",
    "Degradation",
    "EhrUnavailable",
    "FeatureDisabled",
    "FeatureFlags",
    "FlagUpdate",
    "HealthCheckResult",
    "HealthProbe",
    "Hit",
    "MonitorConfig",
    "PatientContextCache",
    "ProviderMonitor",
    "ProviderStatus",
    "RecoveryOutcome",
    "RecoveryPlan",
    "ResilienceError",
    "ResilientFhirClient",
    "Served",
    "TtlCache",
    "UnknownFeatureFlag",
    "WritesDisabled",
    "breaker_band",
    "emergency_shutdown",
    "latency_band",
    "read_flag",
    "search_probe",
    "staged_recovery",
    "success_band",
    "user_ref",
    "write_flag",
]
