"""What the multi-system layer needs of one system's FHIR client, and the default way to build it.

The registry, failover and sync depend on two narrow Protocols, not on the connector's class:
`FhirClient` (`read` and `search`, as `integrations.fhir.FhirConnector` offers them) and
`BreakerView` (the `state` of the system's circuit breaker). `build_connector` is the default
`ConnectorFactory`: the connector pipeline as `integrations.fhir` wires it (client-credentials auth with
a token cache, retry policy, circuit breaker), from one `SystemConfig`. Another pipeline plugs in by
passing its own factory to `SystemRegistry.build`.
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
from integrations.fhir.jwt_assertion import PrivateKeyJwt
from integrations.systems.config import PrivateKeyJwtAuth, SystemConfig


class FhirClient(Protocol):
    """The reads the multi-system layer makes (errors: `integrations.fhir.ConnectorError`)."""

    async def read(self, resource_type: str, id: str) -> FhirResource: ...

    async def search(self, resource_type: str, params: SearchParams | None = None) -> BundlePage: ...


class BreakerView(Protocol):
    @property
    def state(self) -> BreakerState: ...


@dataclass(frozen=True, slots=True)
class SystemClient:
    """One system's client, its breaker, and how to release both (connections, timer tasks)."""

    client: FhirClient
    breaker: BreakerView
    aclose: Callable[[], Awaitable[None]]


class ConnectorFactory(Protocol):
    def __call__(self, system: SystemConfig, *, transport: httpx.AsyncBaseTransport, clock: Clock,
                 rng: random.Random, listener: EventListener) -> SystemClient: ...


def build_connector(system: SystemConfig, *, transport: httpx.AsyncBaseTransport, clock: Clock, rng: random.Random,
                    listener: EventListener) -> SystemClient:
    """`FhirConnector` + `ClientCredentialsAuth` + `CircuitBreaker` for `system`, named by its id (so the
    breaker's and the requests' events say which system, when two systems share a vendor)."""
    auth_config = system.auth
    client_auth: ClientAuthMethod
    if isinstance(auth_config, PrivateKeyJwtAuth):
        secret = ""  # the signed assertion authenticates the client
        client_auth = PrivateKeyJwt(token_url=auth_config.token_url, clock=clock,
                                    rng=random.Random(rng.getrandbits(64)), key=auth_config.signing_key(),
                                    kid=auth_config.key_id, alg=auth_config.algorithm,
                                    lifetime_s=auth_config.assertion_lifetime_s)
    else:
        secret = auth_config.client_secret.get_secret_value()
        client_auth = ClientSecretBasic() if auth_config.method == "client_secret_basic" else ClientSecretPost()
    credentials = ClientCredentials(client_id=auth_config.client_id, client_secret=secret)
    auth = ClientCredentialsAuth(vendor=system.id, token_url=auth_config.token_url, credentials=lambda: credentials,
                                 clock=clock, cache=TokenCache(clock), listener=listener, scope=auth_config.scope,
                                 client_auth=client_auth)
    breaker = CircuitBreaker(system.id, clock, BreakerConfig(), listener=listener)
    connector = FhirConnector(vendor=system.id, base_url=system.base_url, transport=transport, auth=auth, clock=clock,
                              rng=random.Random(rng.getrandbits(64)), retry=RetryPolicy(), breaker=breaker,
                              listener=listener, attempt_timeout_s=system.attempt_timeout_s)

    async def aclose() -> None:
        try:
            await connector.aclose()
        finally:
            await breaker.aclose()

    return SystemClient(client=connector, breaker=breaker, aclose=aclose)
