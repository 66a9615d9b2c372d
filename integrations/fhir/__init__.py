"""FHIR integration: connector, OAuth client credentials with a token cache, retry, circuit breaker.

Wiring, as the lab does it (`harness/vendors.py`):

```python
auth = ClientCredentialsAuth(vendor="medplum", token_url=f"{root}/oauth2/token", credentials=provider,
                             clock=clock, cache=TokenCache(clock), listener=listener)
breaker = CircuitBreaker("medplum", clock, BreakerConfig(), listener=listener)
connector = FhirConnector(vendor="medplum", base_url=f"{root}/fhir/R4", transport=transport, auth=auth,
                          clock=clock, rng=rng, retry=RetryPolicy(), breaker=breaker, listener=listener)
patient = await connector.read("Patient", "123")
...
await connector.aclose(); await breaker.aclose()
```

Errors: one tree rooted at `ConnectorError` (see `integrations.fhir.errors`; the auth flows' own
`CredentialsRejected`, `ConfigurationError` and `UnityCallFailed` are in `integrations.fhir.auth_errors`), a
branch of the integration's one root `integrations.errors.IntegrationError`. A token endpoint that fails
raises what a FHIR call would (`ServerError`, `RequestTimeout`, ...); only a refusal is an `AuthError`.

Auth (`token_flow`, `auth`, `jwt_assertion`, `unity_auth`): every vendor's flow is a `TokenFlow` over
rotating credentials (`credentials`, `credential_sources`), validated at start-up (`config`):

```python
source = EnvCredentials("MEDPLUM_")          # or FileCredentials(path), StaticCredentials(...), a function
config = VendorAuthConfig.from_env("medplum", "MEDPLUM_")   # fails fast: ConfigurationError
auth = ClientCredentialsAuth(vendor="medplum", token_url=config.token_url, credentials=config.credentials,
                             clock=clock, listener=listener)
```
"""

from integrations.fhir.auth import (
    AccessToken,
    ClientAuthMethod,
    ClientCredentials,
    ClientCredentialsAuth,
    ClientSecretBasic,
    ClientSecretPost,
    CredentialsProvider,
    TokenCache,
)
from integrations.fhir.auth_errors import ConfigurationError, CredentialsRejected, UnityCallFailed
from integrations.fhir.breaker import BreakerConfig, CircuitBreaker, Permit, provider_failure
from integrations.fhir.config import VendorAuthConfig, validate_auth_config
from integrations.fhir.connector import FhirConnector, SearchParams
from integrations.fhir.credential_sources import EnvCredentials, FileCredentials
from integrations.fhir.credentials import (
    CallableCredentials,
    CredentialSource,
    RotatingCredentials,
    SigningKeyCredentials,
    StaticCredentials,
)
from integrations.fhir.errors import (
    AuthError,
    CircuitOpen,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    Forbidden,
    MalformedResponse,
    NotFound,
    OutcomeIssue,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    ServerError,
    UnexpectedStatus,
    ValidationFailed,
)
from integrations.fhir.jwt_assertion import JWT_BEARER, PrivateKeyJwt
from integrations.fhir.models import (
    CORRELATION_HEADER,
    BundlePage,
    FhirResource,
    JsonObject,
    JsonValue,
    SearchResults,
)
from integrations.fhir.retry import RetryPolicy, parse_retry_after, retry_safe
from integrations.fhir.token_flow import TokenFlow
from integrations.fhir.unity_auth import UnityClient, UnityTokenAuth

__all__ = [
    "CORRELATION_HEADER",
    "JWT_BEARER",
    "AccessToken",
    "AuthError",
    "BreakerConfig",
    "BundlePage",
    "CallableCredentials",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientAuthMethod",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "ClientSecretBasic",
    "ClientSecretPost",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "ConnectorError",
    "CredentialSource",
    "CredentialsProvider",
    "CredentialsRejected",
    "EnvCredentials",
    "FhirConnector",
    "FhirResource",
    "FileCredentials",
    "Forbidden",
    "JsonObject",
    "JsonValue",
    "MalformedResponse",
    "NotFound",
    "OutcomeIssue",
    "Permit",
    "PreconditionFailed",
    "PrivateKeyJwt",
    "RateLimited",
    "RequestTimeout",
    "RetryPolicy",
    "RotatingCredentials",
    "SearchParams",
    "SearchResults",
    "ServerError",
    "SigningKeyCredentials",
    "StaticCredentials",
    "TokenCache",
    "TokenFlow",
    "UnexpectedStatus",
    "UnityCallFailed",
    "UnityClient",
    "UnityTokenAuth",
    "ValidationFailed",
    "VendorAuthConfig",
    "parse_retry_after",
    "provider_failure",
    "retry_safe",
    "validate_auth_config",
]
