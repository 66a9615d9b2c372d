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

Errors: one tree rooted at `ConnectorError` (see `integrations.fhir.errors`).
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
from integrations.fhir.breaker import BreakerConfig, CircuitBreaker, Permit, provider_failure
from integrations.fhir.connector import FhirConnector, SearchParams
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

__all__ = [
    "CORRELATION_HEADER",
    "JWT_BEARER",
    "AccessToken",
    "AuthError",
    "BreakerConfig",
    "BundlePage",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientAuthMethod",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "ClientSecretBasic",
    "ClientSecretPost",
    "Conflict",
    "ConnectionFailed",
    "ConnectorError",
    "CredentialsProvider",
    "FhirConnector",
    "FhirResource",
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
    "SearchParams",
    "SearchResults",
    "ServerError",
    "TokenCache",
    "UnexpectedStatus",
    "ValidationFailed",
    "parse_retry_after",
    "provider_failure",
    "retry_safe",
]
