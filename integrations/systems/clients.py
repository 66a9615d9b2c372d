"""What the multi-system layer needs of one system's FHIR client, and the default way to build it.

The registry, failover and sync depend on two narrow Protocols, not on the connector's class:
`FhirClient` (`read` and `search`, as `integrations.fhir.FhirConnector` offers them) and
`BreakerView` (the `state` of the system's circuit breaker). `build_connector` is the default
`ConnectorFactory`: the connector pipeline as `integrations.fhir` wires it, from one `SystemConfig`:

- client-credentials auth with a token cache, over `RotatingCredentials` on a `StaticCredentials`
  source holding the configured secret or signing key. `SystemClient.credentials` is that source:
  `deploy` a new credential (tried first, the old one the fallback) and `retire` the old one after the
  vendor revoked it, without a restart (runbooks 000 §1, 002 §10.2). The OAuth error codes that mean
  "this credential was refused" are the vendor's (`REJECTION_ERRORS`: Medplum refuses a wrong secret
  with `invalid_request`, reference/vendors.md §3);
- the system's client-side rate limit (`SystemConfig.client_rate_limit`: by default Epic 600/h and
  Cerner 10,000/h, runbook 004 "Rate Limiting"), so the integration throttles itself before the vendor;
- retry policy and circuit breaker with the runbooks' defaults.

Another pipeline plugs in by passing its own factory to `SystemRegistry.build`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from integrations.clock import Clock
from integrations.events import BreakerState, EventListener
from integrations.fhir import (
    BreakerConfig,
    BundlePage,
    CircuitBreaker,
    ClientAuthMethod,
    ClientCredentials,
    ClientCredentialsAuth,
    ClientSecretBasic,
    ClientSecretPost,
    FhirConnector,
    FhirResource,
    RetryPolicy,
    SearchParams,
    TokenCache,
)
from integrations.fhir.auth import DEFAULT_REJECTION_ERRORS
from integrations.fhir.credentials import Credential, RotatingCredentials, SigningKeyCredentials, StaticCredentials
from integrations.fhir.jwt_assertion import PrivateKeyJwt
from integrations.fhir.ratelimit import RateLimiter
from integrations.systems.config import PrivateKeyJwtAuth, SystemConfig, Vendor

#: OAuth error codes meaning "this credential was refused" (try the next one), per vendor.
REJECTION_ERRORS: dict[Vendor, frozenset[str]] = {
    Vendor.MEDPLUM: DEFAULT_REJECTION_ERRORS | {"invalid_request"},  # "Invalid secret" (vendors.md §3)
}


class FhirClient(Protocol):
    """The reads the multi-system layer makes (errors: `integrations.fhir.ConnectorError`)."""

    async def read(self, resource_type: str, id: str) -> FhirResource: ...

    async def search(self, resource_type: str, params: SearchParams | None = None) -> BundlePage: ...


class BreakerView(Protocol):
    @property
    def state(self) -> BreakerState: ...


@dataclass(frozen=True, slots=True)
class SystemClient:
    """One system's client, its breaker, how to release both (connections, timer tasks), and the source its
    credentials are read from before every token request (None when the factory offers no rotation)."""

    client: FhirClient
    breaker: BreakerView
    aclose: Callable[[], Awaitable[None]]
    credentials: StaticCredentials | None = None


class ConnectorFactory(Protocol):
    def __call__(self, system: SystemConfig, *, transport: httpx.AsyncBaseTransport, clock: Clock,
                 rng: random.Random, listener: EventListener) -> SystemClient: ...


def build_connector(system: SystemConfig, *, transport: httpx.AsyncBaseTransport, clock: Clock, rng: random.Random,
                    listener: EventListener) -> SystemClient:
    """`FhirConnector` + `ClientCredentialsAuth` + `CircuitBreaker` for `system`, named by its id (so the
    breaker's and the requests' events say which system, when two systems share a vendor)."""
    auth_config = system.auth
    client_auth: ClientAuthMethod
    credential: Credential
    if isinstance(auth_config, PrivateKeyJwtAuth):
        key = auth_config.signing_key()
        # Given the key too, so a key that cannot sign is refused here, at build time; assertions are signed
        # with the credential's key, so a deployed key takes over.
        client_auth = PrivateKeyJwt(token_url=auth_config.token_url, clock=clock,
                                    rng=random.Random(rng.getrandbits(64)), key=key, kid=auth_config.key_id,
                                    alg=auth_config.algorithm, lifetime_s=auth_config.assertion_lifetime_s)
        credential = SigningKeyCredentials(auth_config.client_id, key, auth_config.key_id, auth_config.algorithm,
                                           label=f"key {auth_config.key_id}")
    else:
        client_auth = ClientSecretBasic() if auth_config.method == "client_secret_basic" else ClientSecretPost()
        credential = ClientCredentials(client_id=auth_config.client_id,
                                       client_secret=auth_config.client_secret.get_secret_value(),
                                       label=f"{system.id} configured secret")
    source = StaticCredentials(credential)
    auth = ClientCredentialsAuth(vendor=system.id, token_url=auth_config.token_url,
                                 credentials=RotatingCredentials(source, clock, vendor=system.id), clock=clock,
                                 cache=TokenCache(clock), listener=listener, scope=auth_config.scope,
                                 client_auth=client_auth,
                                 rejection_errors=REJECTION_ERRORS.get(system.vendor, DEFAULT_REJECTION_ERRORS))
    breaker = CircuitBreaker(system.id, clock, BreakerConfig(), listener=listener)
    limit = system.client_rate_limit()
    connector = FhirConnector(vendor=system.id, base_url=system.base_url, transport=transport, auth=auth, clock=clock,
                              rng=random.Random(rng.getrandbits(64)), retry=RetryPolicy(), breaker=breaker,
                              listener=listener, attempt_timeout_s=system.attempt_timeout_s,
                              rate_limiter=RateLimiter(limit, clock) if limit is not None else None)

    async def aclose() -> None:
        try:
            await connector.aclose()
        finally:
            await breaker.aclose()

    return SystemClient(client=connector, breaker=breaker, aclose=aclose, credentials=source)
