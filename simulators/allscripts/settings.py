"""Settings of one Allscripts (Veradigm) simulator: FHIR clients, Unity credentials, lifetimes, paths."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AllscriptsClient(BaseModel):
    """One registered app: its client id and secret serve the FHIR token endpoint and, as Unity's
    Username/Password, Unity's GetToken."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    secret: SecretStr = Field(min_length=1)
    scopes: tuple[str, ...] = ("system/*.read",)


class AllscriptsSettings(BaseModel):
    """Secrets are `SecretStr` (masked in repr) and never echoed in validation errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    clients: tuple[AllscriptsClient, ...] = ()
    admin_token: SecretStr = Field(min_length=8, description="Bearer token of the /admin API")
    fhir_path: str = Field(default="/FHIR", pattern=r"^(/[A-Za-z0-9._~-]+)+$",
                           description="FHIR base path (vendors.md §4: https://tw171.open.allscripts.com/FHIR...)")
    token_path: str = Field(default="/authorization/connect/token", pattern=r"^(/[A-Za-z0-9._~-]+)+$",
                            description="vendors.md §4: .../authorization/connect/token, client_secret in the form")
    token_lifetime_s: int = Field(default=1200, gt=0, description="FHIR expires_in: 1200 (vendors.md §4)")
    write_status: int = Field(default=405, ge=400, le=499,
                              description="answer to any FHIR write: the FHIR API is read-only (vendors.md §4); "
                                          "the exact refusal is unconfirmed")
    unity_appname: str = Field(default="ehrlab", min_length=1, description="the Appname Unity licenses")
    unity_token_lifetime_s: int = Field(default=1200, gt=0, description="no documented Unity token lifetime "
                                                                        "(vendors.md §4); 20 minutes")
    unity_product_version: str = "11.2.3.32.000"
    unity_system: str = "Enterprise EHR"
    rate_limit_per_window: int = Field(default=1_000_000, ge=0, description="runbook 004 'Rate Limiting': "
                                                                            "'Allscripts: Varies by agreement'")
    rate_limit_window_s: float = Field(default=3600.0, gt=0)
