"""Settings of one Epic simulator. Every value that vendors.md marks unconfirmed is a setting here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from simulators.epic.outcomes import DEFAULT_ERROR_SYSTEM

#: Epic's open sandbox tenant prefix (vendors.md §1): `https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4`.
SANDBOX_PREFIX = "/interconnect-fhir-oauth"


class EpicClient(BaseModel):
    """A registered Backend Services app: its public keys (static JWKS or a JWKS URL) and scopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1)
    jwks: dict[str, Any] | None = Field(default=None, description="static public JWK Set {'keys': [...]}")
    jwks_url: str | None = Field(default=None, description="JKU the keys are fetched from (Epic: required "
                                                          "for new Backend Systems apps from 2026-02-23)")
    scopes: tuple[str, ...] = ("system/*.cruds",)

    @model_validator(mode="after")
    def _has_keys(self) -> EpicClient:
        if self.jwks is None and self.jwks_url is None:
            raise ValueError("an Epic backend client needs jwks or jwks_url")
        return self


class EpicSettings(BaseModel):
    """Secrets are `SecretStr` (masked in repr) and never echoed in validation errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    clients: tuple[EpicClient, ...] = ()
    admin_token: SecretStr = Field(min_length=8, description="Bearer token of the /admin API")
    path_prefix: str = Field(default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$",
                             description="per-organisation prefix before /api/FHIR/R4 and /oauth2 "
                                         "(vendors.md §1: production bases differ only there)")
    # -- SMART Backend Services (vendors.md §1, §5)
    token_lifetime_s: int = Field(default=300, gt=0, description="expires_in: unconfirmed for Epic "
                                                                 "(vendors.md §1); SMART recommends 300")
    assertion_max_lifetime_s: int = Field(default=300, gt=0, le=3600,
                                          description="largest exp - now accepted (SMART: 5 minutes)")
    clock_skew_s: int = Field(default=0, ge=0, le=300, description="leeway on exp/nbf/iat")
    require_typ: bool = Field(default=True, description="header typ must be JWT (SMART: required)")
    audiences: tuple[str, ...] = Field(default=(), description="aud values accepted besides the URL the "
                                                               "assertion was posted to")
    jwks_cache_ttl_s: float = Field(default=300.0, ge=0, description="JWKS cache when no Cache-Control")
    error_descriptions: bool = Field(default=False, description="send error_description on token errors; "
                                                                "Epic's sandbox sent null (client-js#87)")
    # -- FHIR behaviour
    rate_limit_per_window: int = Field(default=600, ge=0, description="requests per client per window: "
                                                                      "600/hour (runbook 004 'Rate Limiting')")
    rate_limit_window_s: float = Field(default=3600.0, gt=0)
    retry_after_on_429: bool = Field(default=False, description="unconfirmed whether Epic sends Retry-After "
                                                                "(vendors.md §1); off by default")
    search_session_ttl_s: float = Field(default=600.0, gt=0, description="how long a search's next links work "
                                                                         "(Epic answers 4113 after); unconfirmed")
    patient_results_warning: int | None = Field(default=100, ge=0, description="a Patient search matching more "
                                                "carries warning 4127 (Epic's registry: 100); None: never")
    error_code_system: str = DEFAULT_ERROR_SYSTEM
    software_version: str = "February 2025"
