"""The vendor registry: how the lab builds each vendor's simulator and the integration's client for it.

A vendor adapter knows two things: how to create its simulator (with the lab's clock, RNG and
credentials) and how to build the connector the integration uses to talk to it (auth flow, retry,
breaker). The lab decides the transport (in-process or real sockets). Epic, Cerner and Allscripts
join `VENDORS` in their own issue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import httpx
from starlette.types import ASGIApp

from harness.rng import RandomSource
from integrations.clock import Clock
from integrations.events import EventListener
from integrations.fhir import (
    BreakerConfig,
    CircuitBreaker,
    ClientCredentials,
    ClientCredentialsAuth,
    FhirConnector,
    RetryPolicy,
    TokenCache,
)
from simulators.medplum import MedplumSettings, create_medplum


@dataclass(frozen=True, slots=True)
class LabSecrets:
    """Credentials the lab registers in a simulator and hands to the integration. Never journaled."""

    client_id: str
    client_secret: str
    admin_token: str

    def __repr__(self) -> str:
        return f"LabSecrets(client_id={self.client_id!r}, client_secret='***', admin_token='***')"

    @classmethod
    def generate(cls, vendor: str, rng: random.Random) -> LabSecrets:
        def token(n: int) -> str:
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

        return cls(client_id=f"ehrlab-{vendor}-{token(8)}", client_secret=token(40), admin_token=token(32))


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

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle: ...

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient: ...


class MedplumAdapter:
    """Medplum: client-credentials OAuth at /oauth2/token, FHIR at /fhir/R4 (vendors.md §3)."""

    name = "medplum"

    def simulator(self, clock: Clock, rng: random.Random, secrets: LabSecrets) -> SimulatorHandle:
        settings = MedplumSettings(clients={secrets.client_id: secrets.client_secret},
                                   admin_token=secrets.admin_token)
        return create_medplum(settings, clock, rng)

    def client(self, *, base_url: str, transport: httpx.AsyncBaseTransport, clock: Clock, sources: RandomSource,
               secrets: LabSecrets, listener: EventListener) -> VendorClient:
        credentials = ClientCredentials(client_id=secrets.client_id, client_secret=secrets.client_secret)
        auth = ClientCredentialsAuth(
            vendor=self.name, token_url=f"{base_url}/oauth2/token", credentials=lambda: credentials,
            clock=clock, cache=TokenCache(clock), listener=listener,
        )
        breaker = CircuitBreaker(self.name, clock, BreakerConfig(), listener=listener)
        connector = FhirConnector(
            vendor=self.name, base_url=f"{base_url}/fhir/R4", transport=transport, auth=auth, clock=clock,
            rng=sources.stream(f"connector.{self.name}"), retry=RetryPolicy(), breaker=breaker, listener=listener,
        )
        return VendorClient(connector=connector, breaker=breaker)


VENDORS: dict[str, VendorAdapter] = {"medplum": MedplumAdapter()}
