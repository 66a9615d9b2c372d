"""Several EHR systems at once (runbook `004_bc3882054056792c.txt`): a registry built from typed
configuration with a connection-pool limit per system, Patient reads that fail over to another system
holding the same patient, and a multi-system patient sync that reports conflicts field by field.

```python
registry = SystemRegistry.build(load_registry_config(settings), clock=clock, rng=rng, listener=listener)
reader = FailoverReader(registry, listener=listener)
served = await reader.read_patient("epic_prod", "e123", Identifier("urn:oid:1.2.3", "EMPI-1"))
report = await PatientSync(registry, clock=clock, rng=rng, listener=listener).sync_patient(
    Identifier("urn:oid:1.2.3", "EMPI-1"))
await registry.aclose()
```

Errors: one tree rooted at `SystemsError` (`integrations.systems.errors`).
"""

from integrations.systems.clients import BreakerView, ConnectorFactory, FhirClient, SystemClient, build_connector
from integrations.systems.config import (
    SUPPORTED_AUTH,
    AuthConfig,
    ClientSecretAuth,
    PoolLimits,
    PrivateKeyJwtAuth,
    RateLimitSettings,
    RegistryConfig,
    SystemConfig,
    Vendor,
    load_registry_config,
)
from integrations.systems.conflicts import PATIENT_FIELDS, FieldConflict, FieldRule, FieldValue, compare
from integrations.systems.errors import (
    Attempt,
    ConfigError,
    ConfigProblem,
    FailoverExhausted,
    SystemsError,
    UnknownSystem,
)
from integrations.systems.failover import FailoverReader, SourcedResource, unavailable
from integrations.systems.identity import Identifier, find_patients
from integrations.systems.patient_sync import PatientSync, PatientSyncReport, SystemResult
from integrations.systems.pool import PoolLimitedTransport, PoolStats, http_transport
from integrations.systems.registry import (
    RegisteredSystem,
    SystemRegistry,
    SystemStatus,
    TransportFactory,
    refuses_calls,
)

__all__ = [
    "PATIENT_FIELDS",
    "SUPPORTED_AUTH",
    "Attempt",
    "AuthConfig",
    "BreakerView",
    "ClientSecretAuth",
    "ConfigError",
    "ConfigProblem",
    "ConnectorFactory",
    "FailoverExhausted",
    "FailoverReader",
    "FhirClient",
    "FieldConflict",
    "FieldRule",
    "FieldValue",
    "Identifier",
    "PatientSync",
    "PatientSyncReport",
    "PoolLimitedTransport",
    "PoolLimits",
    "PoolStats",
    "PrivateKeyJwtAuth",
    "RateLimitSettings",
    "RegisteredSystem",
    "RegistryConfig",
    "SourcedResource",
    "SystemClient",
    "SystemConfig",
    "SystemRegistry",
    "SystemResult",
    "SystemStatus",
    "SystemsError",
    "TransportFactory",
    "UnknownSystem",
    "Vendor",
    "build_connector",
    "compare",
    "find_patients",
    "http_transport",
    "load_registry_config",
    "refuses_calls",
    "unavailable",
]
