"""The service's configuration: its secrets and the defaults of its operations.

Three kinds of caller, three credentials (runbook 002_437ee203264dfa64.txt §6, §10.2):

- operators (`/fhir/admin/*`, `/api/admin/*`): `Authorization: Bearer <operator_token>`;
- schedulers (`/fhir/admin/*/cron`): `X-Cron-Secret: <cron_secret>` (the runbook's 64 hex characters);
- external systems and users (`/fhir/inbound/*`, `/fhir/export/*`): `Authorization: Bearer <api key>`,
  each key bound to the organisations it may act for (`ApiClient.org_ids`), plus `X-Org-ID` (and for
  export `X-User-ID` and `X-Role`, which the service trusts once the key is valid, as the runbook does).

Every comparison of a presented secret is constant-time (`hmac.compare_digest`). `repr()` of a config
shows no secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MIN_SECRET_CHARS = 32


@dataclass(frozen=True, slots=True)
class ApiClient:
    """The holder of one API key: a name for logs and audit (not a secret) and the organisations it acts for."""

    name: str
    org_ids: frozenset[str]

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an API client needs a name")
        if not self.org_ids:
            raise ValueError(f"API client {self.name!r} must be allowed at least one organisation")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    operator_token: str = field(repr=False)
    cron_secret: str = field(repr=False)
    api_keys: Mapping[str, ApiClient] = field(default_factory=dict, repr=False)
    vendor: str = "medplum"  # the provider whose health is `checks.medplum` in /health
    queue_name: str = "fhir-sync"
    stale_window_s: float = 3600.0  # reconciliation stats and the holi_fhir_sync_stale gauge (§8.3: > 1 h)
    reconciliation_stale_days: float = 1.0  # a run's default (§5 Step 5A: {"staleDays": 1, "batchSize": 1000})
    reconciliation_batch_size: int = 1000
    audit_mirror_limit: int = 1000  # an audit mirror run's default (§5 Step 5B: {"limit": 1000})
    max_list_limit: int = 1000  # the largest `limit` a listing accepts
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        for name, value in (("operator_token", self.operator_token), ("cron_secret", self.cron_secret)):
            if len(value) < MIN_SECRET_CHARS:
                raise ValueError(f"{name} must be at least {MIN_SECRET_CHARS} characters")
        if self.operator_token == self.cron_secret:
            raise ValueError("operator_token and cron_secret must differ")
        for key in self.api_keys:
            if len(key) < MIN_SECRET_CHARS:
                raise ValueError(f"API keys must be at least {MIN_SECRET_CHARS} characters")
            if key in (self.operator_token, self.cron_secret):
                raise ValueError("an API key must differ from the operator token and the cron secret")
        if self.stale_window_s <= 0 or self.reconciliation_stale_days <= 0:
            raise ValueError("stale windows must be positive")
        if self.reconciliation_batch_size < 1 or self.audit_mirror_limit < 1 or self.max_list_limit < 1:
            raise ValueError("batch sizes and limits must be >= 1")

    def __repr__(self) -> str:
        return (f"ServiceConfig(vendor={self.vendor!r}, queue_name={self.queue_name!r}, "
                f"api_keys={len(self.api_keys)}, secrets='***')")
