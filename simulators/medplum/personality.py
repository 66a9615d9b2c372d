"""Medplum's FHIR personality (reference/vendors.md §3): what the shared core does differently for it.

- `versionId` is a UUID; a stale `If-Match` is 412 `precondition-failed`; a deleted resource reads 410
  `gone` (the server Repository; 404 on MemoryRepository: `MedplumSettings.deleted_read_status`);
- `PUT` to a new id creates (201); conditional create and update as the router maps them;
- `Location` is `<base>/<type>/<id>` without `_history` (packages/server/src/fhir/response.ts);
- paging by `_offset` with `_count` (default 20, at most 1000);
- an unknown search parameter is 400 by default (`MedplumSettings.unknown_search_param`);
- errors use @medplum/core's OperationOutcome constants (`simulators.medplum.outcomes`);
- SMART configuration at `/fhir/R4/.well-known/smart-configuration`, URLs on the request's own host.
"""

from __future__ import annotations

from simulators.fhir.outcome import FHIR_JSON
from simulators.fhir.personality import FhirPersonality
from simulators.medplum.outcomes import medplum_outcome
from simulators.medplum.settings import MedplumSettings

SMART_CONFIGURATION = {
    "issuer": "{server}/",
    "jwks_uri": "{server}/.well-known/jwks.json",
    "authorization_endpoint": "{server}/oauth2/authorize",
    "token_endpoint": "{server}/oauth2/token",
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
    "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
    "scopes_supported": ["openid", "profile", "fhirUser", "offline_access", "launch/patient",
                         "patient/*.*", "user/*.*", "system/*.*"],
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["plain", "S256"],
    "capabilities": ["client-confidential-symmetric", "client-public", "context-ehr-patient", "launch-ehr",
                     "launch-standalone", "permission-offline", "permission-patient", "permission-user",
                     "permission-v1", "sso-openid-connect"],
}


def medplum_personality(settings: MedplumSettings) -> FhirPersonality:
    return FhirPersonality(
        name="medplum",
        version_ids="uuid",
        stale_version_status=412,
        deleted_read_status=settings.deleted_read_status,
        put_create_status=201,
        invalid_resource_status=400,
        location_with_version=False,
        unknown_search_param=settings.unknown_search_param,
        default_count=20,
        max_count=1000,
        count_over_max="clamp",
        paging="offset",
        software_name="Medplum",
        software_version=settings.version,
        smart_configuration=SMART_CONFIGURATION,
        media_type=FHIR_JSON,
        max_body_bytes=settings.max_body_bytes,
        resource_types=settings.resource_types,
        outcome=medplum_outcome,
    )
