"""The integration service: the HTTP API the runbooks operate by hand (runbook 002_437ee203264dfa64.txt §6,
§8.2-§8.3, §10.2; runbook 000_030ea53f0735abf7.txt §2, §3, §8), as a FastAPI app over injected components.

```python
components = ServiceComponents(clock=clock, queue=queue, flags=flags, metrics=metrics,
                               providers={"medplum": resilient_client}, database=db, store=store,
                               consent=gate, audit=audit, reconciler=reconciler, ingress=ingress,
                               exporter=exporter, audit_mirror=mirror)
app = create_service(ServiceConfig(operator_token=..., cron_secret=..., api_keys={key: ApiClient(...)}),
                     components)
```

`metrics = ServiceMetrics()` has its own Prometheus registry; wire `fan_out(metrics.observe, listener)` as
the components' listener so queue, sync and consent events move its counters. `harness/service_cmd.py`
(`ehrlab service`) is the reference wiring.

Parts: `config` (secrets and defaults), `components`, `auth` (operator token, cron secret, API keys;
constant-time), `errors` (the one error boundary), `bodies` (typed request bodies), `health`, `admin`
(provider status, feature flags, queue), `reconciliation_api`, `audit_mirror_api`, `ingress_api`, `export_api`,
`metrics`
(registry and request middleware), `app` (`create_service`, `/metrics`). """

from integrations.service.app import create_service
from integrations.service.components import ServiceComponents, Startup
from integrations.service.config import ApiClient, ServiceConfig
from integrations.service.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError, Unauthenticated
from integrations.service.metrics import ServiceMetrics, fan_out

__all__ = [
    "ApiClient",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ServiceComponents",
    "ServiceConfig",
    "ServiceError",
    "ServiceMetrics",
    "Startup",
    "Unauthenticated",
    "create_service",
    "fan_out",
]
