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

Auth (issue 5): every client's credentials come from a `StaticCredentials` source (`VendorClient.credentials`,
the handle a rotation scenario deploys a new credential to and retires the old one from), wrapped in
`RotatingCredentials` (newest first, the old one the fallback, refused ones reported as
`CredentialRejected`). The configuration is validated before the client is built
(`integrations.fhir.config.validate_auth_config`: missing values, placeholders, secrets under 20
characters, plain HTTP outside the lab; runbook 002_437ee203264dfa64.txt §2.5). Allscripts also gets
a Unity client (`VendorClient.unity`) on the Unity security-token flow (GetToken, refresh on the
expired-token error, RetireSecurityToken on `aclose()`), with the same credentials (the simulator's
Unity Username/Password are the FHIR client id and secret). Its FHIR connector keeps the OAuth token
of `/authorization/connect/token`: Allscripts' FHIR API takes OAuth bearer tokens, not Unity session
tokens (vendors.md §4; the simulator refuses a Unity token there, as a separate product would).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from joserfc.jwk import ECKey
from starlette.types import ASGIApp

from harness.rng import RandomSource, random_token
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
from integrations.fhir.auth import DEFAULT_REJECTION_ERRORS
from integrations.fhir.config import validate_auth_config
from integrations.fhir.credentials import Credential, RotatingCredentials, SigningKeyCredentials, StaticCredentials
from integrations.fhir.jwt_assertion import PrivateKeyJwt
from integrations.fhir.ratelimit import VENDOR_RATE_LIMITS, RateLimiter
from integrations.fhir.unity_auth import UNITY_PATH, UnityClient, UnityTokenAuth
from simulators.allscripts import AllscriptsClient, AllscriptsSettings, create_allscripts
from simulators.cerner import SANDBOX_TENANT, CernerClient, CernerSettings, create_cerner
from simulators.epic import EpicClient, EpicSettings, create_epic
from simulators.medplum import MedplumSettings, create_medplum

LAB_BREAKER_WINDOW = 100


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
            return random_token(rng, n)

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
    credentials: StaticCredentials | None = None  # deploy / retire credentials here to rotate them at run time
    unity: UnityClient | None = None  # Allscripts only: the Unity API on its security-token flow

    async def aclose(self) -> None:
        """Close everything: the Unity client first (it retires its security token), then the connector, the breaker."""
        try:
            if self.unity is not None:
                await self.unity.aclose()
        finally:
            await self.connector.aclose()
            await self.breaker.aclose()


class VendorAdapter(Protocol):
    name: str
    fhir_path: str
    token_path: str

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle: ...

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient: ...


def _lab_secret(secrets: LabSecrets) -> ClientCredentials:
    return ClientCredentials(client_id=secrets.client_id, client_secret=secrets.client_secret, label="lab-secret-1")


def _vendor_client(adapter: VendorAdapter, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock,
                   sources: RandomSource, secrets: LabSecrets, listener: EventListener,
                   client_auth: ClientAuthMethod | None = None, scope: str | None = None,
                   credential: Credential | None = None,
                   rejection_errors: frozenset[str] = DEFAULT_REJECTION_ERRORS,
                   unity: bool = False) -> VendorClient:
    """The connector, auth flow and breaker every vendor gets; only the client authentication differs."""
    source = StaticCredentials(credential if credential is not None else _lab_secret(secrets))
    token_url = f"{base_url}{adapter.token_path}"
    validate_auth_config(adapter.name, base_url=f"{base_url}{adapter.fhir_path}", token_url=token_url,
                         credentials=source)
    rotating = RotatingCredentials(source, clock, vendor=adapter.name)
    auth = ClientCredentialsAuth(
        vendor=adapter.name, token_url=token_url, credentials=rotating, clock=clock, cache=TokenCache(clock),
        listener=listener, scope=scope, client_auth=client_auth, rejection_errors=rejection_errors,
    )
    # A 100-call window (resilience4j's default slidingWindowSize): with the 20-call default a 30 % error
    # rate (runbook 000_030ea53f0735abf7.txt §6) reached the 50 % threshold by chance several times in five
    # minutes and the flapping breaker failed more reads than the errors did (scenarios/epic-error-rate.yaml).
    breaker = CircuitBreaker(adapter.name, clock, BreakerConfig(window_size=LAB_BREAKER_WINDOW), listener=listener)
    # The client throttles itself at the vendor's published rate (Epic 600/h, Cerner 10,000/h; runbook
    # 004_bc3882054056792c.txt "Rate Limiting"), waiting rather than failing.
    limit = VENDOR_RATE_LIMITS.get(adapter.name)
    limiter = RateLimiter(limit, clock) if limit is not None else None
    connector = FhirConnector(
        vendor=adapter.name, base_url=f"{base_url}{adapter.fhir_path}", transport=transport, auth=auth, clock=clock,
        rng=sources.stream(f"connector.{adapter.name}"), retry=RetryPolicy(), breaker=breaker, listener=listener,
        rate_limiter=limiter,
    )
    unity_client = None
    if unity:
        unity_auth = UnityTokenAuth(unity_url=f"{base_url}{UNITY_PATH}", appname="ehrlab", credentials=rotating,
                                    clock=clock, cache=TokenCache(clock), listener=listener)
        unity_client = UnityClient(auth=unity_auth, transport=transport, clock=clock)
    return VendorClient(connector=connector, breaker=breaker, credentials=source, unity=unity_client)


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
        # Medplum refuses a wrong secret with `invalid_request` ("Invalid secret", vendors.md §3).
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener,
                              rejection_errors=DEFAULT_REJECTION_ERRORS | {"invalid_request"})


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
        # The key comes with the credentials (so it rotates like a secret); Epic samples use 4-minute assertions.
        assertion = PrivateKeyJwt(token_url=f"{base_url}{self.token_path}", clock=clock,
                                  rng=sources.stream(f"assertion.{self.name}"), alg="ES384", lifetime_s=240)
        key = SigningKeyCredentials(secrets.client_id, secrets.signing_key, secrets.key_id, "ES384",
                                    label=f"key {secrets.key_id}")
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener, client_auth=assertion, credential=key)


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
    (vendors.md §4). `VendorClient.unity` talks to the Unity API on the Unity security-token flow."""

    name = "allscripts"
    fhir_path = "/FHIR"
    token_path = "/authorization/connect/token"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        client = AllscriptsClient(client_id=secrets.client_id, secret=secrets.client_secret)
        return create_allscripts(AllscriptsSettings(clients=(client,), admin_token=secrets.admin_token), clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        return _vendor_client(self, base_url=base_url, transport=transport, clock=clock, sources=sources,
                              secrets=secrets, listener=listener, unity=True)


VENDORS: dict[str, VendorAdapter] = {
    "medplum": MedplumAdapter(),
    "epic": EpicAdapter(),
    "cerner": CernerAdapter(),
    "allscripts": AllscriptsAdapter(),
}
