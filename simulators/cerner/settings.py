"""Settings of one Cerner (Oracle Health Millennium) simulator: tenants, system accounts, limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

#: Cerner's public sandbox tenant (vendors.md §2, content/millennium/r4.md).
SANDBOX_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"


class CernerClient(BaseModel):
    """A system account registered in one tenant, with its secret and allowed `system/...` scopes."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    secret: SecretStr = Field(min_length=1)
    tenant: str = SANDBOX_TENANT
    scopes: tuple[str, ...] = ("system/*.read", "system/*.write")


class CernerSettings(BaseModel):
    """Secrets are `SecretStr` (masked in repr) and never echoed in validation errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    tenants: tuple[str, ...] = Field(default=(SANDBOX_TENANT,), min_length=1,
                                     description="tenant ids served; the first one is `.store`")
    clients: tuple[CernerClient, ...] = ()
    admin_token: SecretStr = Field(min_length=8, description="Bearer token of the /admin API")
    token_lifetime_s: int = Field(default=570, gt=0, description="expires_in: 570 (vendors.md §2)")
    rate_limit_per_window: int = Field(default=10_000, ge=0, description="requests per client per window: "
                                                                         "10,000/hour (runbook 004 'Rate Limiting')")
    rate_limit_window_s: float = Field(default=3600.0, gt=0)
    retry_after_on_429: bool = Field(default=False, description="no published FHIR rate limit (vendors.md §2)")
    realm: str = Field(default="fhir-ehr-code.cerner.com", description="WWW-Authenticate realm of a 401")
    error_uri_base: str = "https://authorization.cerner.com/errors"
    media_type: str = Field(default="application/json+fhir",
                            description="Content-Type of FHIR answers (vendors.md §2, the metadata example)")
    export_retry_after_s: int = Field(default=600, gt=0, description="bulk status poll Retry-After (vendors.md §2)")
    software_version: str = "2024.05"

    @model_validator(mode="after")
    def _clients_in_tenants(self) -> CernerSettings:
        for client in self.clients:
            if client.tenant not in self.tenants:
                raise ValueError(f"client {client.client_id!r} names a tenant this simulator does not serve")
        return self
