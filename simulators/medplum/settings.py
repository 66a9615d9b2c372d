"""Settings of one Medplum simulator: registered clients, admin token, token lifetime, identity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: The FHIR resource types the simulator serves; others answer 404.
DEFAULT_RESOURCE_TYPES = ("Patient", "Encounter", "Observation")


class MedplumSettings(BaseModel):
    """Secrets are `SecretStr` (masked in repr) and never echoed in validation errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    clients: dict[str, SecretStr] = Field(description="client_id -> client_secret")
    admin_token: SecretStr = Field(min_length=8, description="Bearer token of the /admin API")
    token_lifetime_s: int = Field(default=3600, gt=0, description="access token expires_in (Medplum: 3600)")
    project_id: str | None = Field(default=None, description="Project id in token responses; None: from the rng")
    resource_types: tuple[str, ...] = DEFAULT_RESOURCE_TYPES
    # What /healthcheck reports (MEDPLUM_VERSION, os.platform(), process.version on a real server).
    version: str = "5.2.13"
    platform: str = "linux"
    runtime: str = "v22.14.0"
