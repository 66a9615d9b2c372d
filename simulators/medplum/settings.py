"""Settings of one Medplum simulator: clients, admin token, token lifetime, quotas, identity.

Backward compatible: `MedplumSettings(clients={client_id: secret}, admin_token=...)` is all the lab
passes (harness/vendors.py). Numbers with a source cite it (reference/vendors.md §3, "Rate limits"):
- `rate_limit_per_minute` 60,000 requests per IP per minute (ratelimit.ts DEFAULT_RATE_LIMIT_PER_MINUTE);
  `auth_rate_limit_per_minute` 160 for `/oauth2/*` and `/auth/*` (DEFAULT_AUTH_RATE_LIMIT_PER_MINUTE);
- `fhir_quota_per_minute` 50,000 points per user (client) per minute: the stock quota integrators hit
  (vendors.md §3, and the docs' example header `"fhirInteractions";r=49894;t=60`); the project total is
  `project_quota_multiplier` (10) times that (fhirquota.ts `projectLimit = userLimit*10`);
- `token_lifetime_s` 3600 (token.ts `expires_in`).
Unconfirmed facts are settings: `unknown_search_param` ("error": 400, the real server's Repository;
MemoryRepository ignores them), `deleted_read_status` (410 server, 404 MemoryRepository).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from simulators.fhir.personality import DEFAULT_RESOURCE_TYPES

DEFAULT_CLIENT_SCOPES: tuple[str, ...] = ("system/*.cruds",)


class MedplumSettings(BaseModel):
    """Secrets are `SecretStr` (masked in repr) and never echoed in validation errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    clients: dict[str, SecretStr] = Field(description="client_id -> client_secret")
    admin_token: SecretStr = Field(min_length=8, description="Bearer token of the /admin API")
    client_scopes: tuple[str, ...] = Field(default=DEFAULT_CLIENT_SCOPES,
                                           description="SMART scopes every registered client may have")
    token_lifetime_s: int = Field(default=3600, gt=0, description="access token expires_in (Medplum: 3600)")
    project_id: str | None = Field(default=None, description="Project id in token responses; None: from the rng")
    resource_types: tuple[str, ...] = DEFAULT_RESOURCE_TYPES
    # Rate limits and quotas (per minute; 0 refuses everything, see the module docstring for sources).
    rate_limit_per_minute: int = Field(default=60_000, ge=0)
    auth_rate_limit_per_minute: int = Field(default=160, ge=0)
    fhir_quota_per_minute: int = Field(default=50_000, ge=0)
    project_quota_multiplier: int = Field(default=10, ge=1)
    enable_fhir_quota: bool = True
    # Personality switches for facts vendors.md could not confirm.
    unknown_search_param: Literal["ignore", "error"] = "error"
    deleted_read_status: Literal[404, 410] = 410
    audit_events: bool = Field(default=True, description="write an AuditEvent for each FHIR interaction")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # What /healthcheck reports (MEDPLUM_VERSION, os.platform(), process.version on a real server).
    version: str = "5.2.13"
    platform: str = "linux"
    runtime: str = "v22.14.0"
