"""The vendor registry: how the lab builds each vendor's simulator and the integration's client for it.

A vendor adapter knows two things: how to create its simulator (with the lab's clock, RNG and
credentials) and how to build the connector the integration uses to talk to it (auth flow, retry,
breaker). The lab decides the transport (in-process or real sockets). Each adapter also names its
FHIR base path and token path under the simulator's base URL (`fhir_path`, `token_path`), which
`ehrlab serve` prints.

| vendor     | token endpoint (client authentication)                         | FHIR base              |
|------------|----------------------------------------------------------------|------------------------|
| medplum    | /oauth2/token (client_secret_post)                             | /fhir/R4               |
| epic       | /oauth2/token (private_key_jwt, ES384, SMART Backend Services) | /api/FHIR/R4           |
| cerner     | /tenants/{t}/protocols/oauth2/profiles/smart-v1/token (Basic)  | /r4/{t}                |
| allscripts | /authorization/connect/token (client_secret_post)              | /FHIR (read-only)      |

Allscripts' FHIR API is read-only (vendors.md §4): the lab's write operations against it are refused
by the simulator (405 OperationOutcome), which the connector raises as `UnexpectedStatus`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from joserfc.jwk import ECKey
from starlette.types import ASGIApp

from harness.rng import RandomSource
from integrations.clock import Clock
from integrations.events import EventListener
from integrations.fhir import (
    BreakerConfig,
    CircuitBreaker,
    ClientAuthMethod,
    ClientCredentials,
    ClientCredentialsAuth,
    ClientSecretBasic,
    FhirConnector,
    RetryPolicy,
    TokenCache,
)
from integrations.fhir.jwt_assertion import PrivateKeyJwt
from simulators.allscripts import AllscriptsClient, AllscriptsSettings, create_allscripts
from simulators.cerner import SANDBOX_TENANT, CernerClient, CernerSettings, create_cerner
from simulators.epic import EpicClient, EpicSettings, create_epic
from simulators.medplum import MedplumSettings, create_medplum

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class LabSecrets:
    """Credentials the lab registers in a simulator and hands to the integration. Never journaled.

    `signing_key` is a private EC P-384 key (ES384) for vendors that authenticate clients with a JWT
    assertion (Epic); its public half is registered under `key_id`.
    """

    client_id: str
    client_secret: str
    admin_token: str
    signing_key: ECKey | None = field(default=None, compare=False)
    key_id: str = ""

    def __repr__(self) -> str:
        return (f"LabSecrets(client_id={self.client_id!r}, client_secret='***', admin_token='***', "
                f"key_id={self.key_id!r})")

    @classmethod
    def generate(cls, vendor: str, rng: random.Random) -> LabSecrets:
        def token(n: int) -> str:
            return "".join(rng.choice(_ALPHABET) for _ in range(n))

        client_id, client_secret, admin_token = f"ehrlab-{vendor}-{token(8)}", token(40), token(32)
        # Drawn after the three above, so adding the key changed none of them. An EC key derived from
        # rng material is reproducible from the seed (an RSA key could not be).
        key_id = f"ehrlab-{token(8)}"
        signing_key = ECKey.derive_key(token(48), "P-384", parameters={"kid": key_id, "alg": "ES384", "use": "sig"})
        return cls(client_id=client_id, client_secret=client_secret, admin_token=admin_token,
                   signing_key=signing_key, key_id=key_id)

    def public_jwks(self) -> dict[str, object]:
        if self.signing_key is None:
            raise ValueError("these secrets carry no signing key")
        return {"keys": [dict(self.signing_key.as_dict(private=False))]}


class SimulatorHandle(Protocol):
    @property
    def app(self) -> ASGIApp: ...

    def seed_patients(self, n: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class VendorClient:
    connector: FhirConnector
    breaker: CircuitBreaker


class VendorAdapter(Protocol):
    name: str
    fhir_path: str
    token_path: str

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle: ...

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient: ...


def _vendor_client(adapter: VendorAdapter, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock,
                   sources: RandomSource, secrets: LabSecrets, listener: EventListener,
                   client_auth: ClientAuthMethod | None = None, scope: str | None = None) -> VendorClient:
    """The connector, auth flow and breaker every vendor gets; only the client authentication differs."""
    credentials = ClientCredentials(client_id=secrets.client_id, client_secret=secrets.client_secret)
    auth = ClientCredentialsAuth(
        vendor=adapter.name, token_url=f"{base_url}{adapter.token_path}", credentials=lambda: credentials,
        clock=clock, cache=TokenCache(clock), listener=listener, scope=scope, client_auth=client_auth,
    )
    breaker = CircuitBreaker(adapter.name, clock, BreakerConfig(), listener=listener)
    connector = FhirConnector(
        vendor=adapter.name, base_url=f"{base_url}{adapter.fhir_path}", transport=transport, auth=auth, clock=clock,
        rng=sources.stream(f"connector.{adapter.name}"), retry=RetryPolicy(), breaker=breaker, listener=listener,
    )
    return VendorClient(connector=connector, breaker=breaker)


class MedplumAdapter:
    """Medplum: client-credentials OAuth at /oauth2/token, FHIR at /fhir/R4 (vendors.md §3)."""

    name = "medplum"
    fhir_path = "/fhir/R4"
    token_path = "/oauth2/token"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        settings = MedplumSettings(clients={secrets.client_id: secrets.client_secret},
                                   admin_token=secrets.admin_token)
        return create_medplum(settings, clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener)


class EpicAdapter:
    """Epic: SMART Backend Services (private_key_jwt, ES384) at /oauth2/token, FHIR at /api/FHIR/R4 (vendors.md §1)."""

    name = "epic"
    fhir_path = "/api/FHIR/R4"
    token_path = "/oauth2/token"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        client = EpicClient(client_id=secrets.client_id, jwks=secrets.public_jwks())
        return create_epic(EpicSettings(clients=(client,), admin_token=secrets.admin_token), clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        if secrets.signing_key is None:
            raise ValueError("Epic needs LabSecrets with a signing key")
        assertion = PrivateKeyJwt(token_url=f"{base_url}{self.token_path}", clock=clock,
                                  rng=sources.stream(f"assertion.{self.name}"), key=secrets.signing_key,
                                  kid=secrets.key_id, alg="ES384", lifetime_s=240)
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener, client_auth=assertion)


class CernerAdapter:
    """Cerner: system account (HTTP Basic) at the tenant's token URL, FHIR at /r4/{tenant} (vendors.md §2)."""

    name = "cerner"
    tenant = SANDBOX_TENANT
    fhir_path = f"/r4/{SANDBOX_TENANT}"
    token_path = f"/tenants/{SANDBOX_TENANT}/protocols/oauth2/profiles/smart-v1/token"
    #: The `system/` v1 scopes the lab's workload needs (read and search, create Observation, update Patient).
    scope = "system/Patient.read system/Patient.write system/Observation.read system/Observation.write"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        client = CernerClient(client_id=secrets.client_id, secret=secrets.client_secret, tenant=self.tenant)
        return create_cerner(CernerSettings(tenants=(self.tenant,), clients=(client,),
                                            admin_token=secrets.admin_token), clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener, client_auth=ClientSecretBasic(), scope=self.scope)


class AllscriptsAdapter:
    """Allscripts/Veradigm: client_secret in the form at /authorization/connect/token, read-only FHIR at /FHIR
    (vendors.md §4). The Unity API is served too (same credentials) but the lab's connector speaks FHIR."""

    name = "allscripts"
    fhir_path = "/FHIR"
    token_path = "/authorization/connect/token"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        client = AllscriptsClient(client_id=secrets.client_id, secret=secrets.client_secret)
        return create_allscripts(AllscriptsSettings(clients=(client,), admin_token=secrets.admin_token), clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener)


VENDORS: dict[str, VendorAdapter] = {
    "medplum": MedplumAdapter(),
    "epic": EpicAdapter(),
    "cerner": CernerAdapter(),
    "allscripts": AllscriptsAdapter(),
}
