"""Build a Medplum simulator: FHIR core with Medplum's personality, OAuth, quotas, audit, admin API.

Layers, outermost first: request journal and chaos (`simulators.admin.assemble`), Medplum's per-IP
request limit and `RateLimit` header (`limits.RequestRateLimit`), the Bearer gate on /fhir/R4
(`auth.FhirGate`), the FHIR core at `/fhir/R4` (`simulators.fhir.dispatch.FhirFastPath`), then the
FastAPI app: `/oauth2/token`, `/healthcheck`, the admin routers at `/admin`, and `/openapi.json` (as the
real server publishes one), which documents the FHIR core too.

Randomness: `create_medplum` splits the rng it is given into independent streams, in a fixed order
(store ids and versions, access tokens, admin layer, seed data, project id, registry, paging/export),
so e.g. a chaos decision never shifts the next resource id or token, and the same seed gives the same
ids, tokens and data.
"""

from __future__ import annotations

import random

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from integrations.clock import Clock
from simulators.admin.assemble import Simulation, assemble
from simulators.admin.clients import ClientRegistry
from simulators.admin.journal import RequestJournal
from simulators.admin.ratelimit import WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.chaos import ChaosState
from simulators.fastapi_app import simulator_api
from simulators.fhir.api import fhir_router
from simulators.fhir.dispatch import FhirFastPath, fhir_asgi
from simulators.fhir.openapi_doc import document_fhir
from simulators.fhir.outcome import install_outcome_handlers
from simulators.fhir.personality import store_for
from simulators.fhir.store import ResourceStore, rng_uuid
from simulators.fhir.synthetic import Population, seed_population
from simulators.medplum.audit import AuditTrail
from simulators.medplum.auth import FHIR_BASE, FhirGate, medplum_authorizer, oauth_router
from simulators.medplum.limits import MINUTE, FhirQuota, RequestRateLimit
from simulators.medplum.personality import medplum_personality
from simulators.medplum.settings import MedplumSettings


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


class MedplumSimulator:
    """One fake Medplum server. `app` is the ASGI app to serve or mount (journal and chaos outermost)."""

    def __init__(self, *, simulation: Simulation, store: ResourceStore, tokens: TokenStore,
                 registry: ClientRegistry, settings: MedplumSettings, project_id: str, clock: Clock,
                 seed_rng: random.Random, audit: AuditTrail | None = None) -> None:
        self.simulation = simulation
        self.app: ASGIApp = simulation.app
        self.chaos: ChaosState = simulation.chaos
        self.journal: RequestJournal = simulation.journal
        self.limiters = simulation.limiters
        self.store = store
        self.tokens = tokens
        self.registry = registry
        self.settings = settings
        self.project_id = project_id
        self._clock = clock
        self._seed_rng = seed_rng
        self.population: Population = Population()
        self._audit = audit

    def __repr__(self) -> str:
        return f"MedplumSimulator(project_id={self.project_id!r}, clients={self.registry.client_ids()!r})"

    def audit_events(self) -> list[dict[str, object]]:
        """Every AuditEvent written so far (pending ones are flushed first), oldest first."""
        if self._audit is not None:
            self._audit.flush()
        return self.store.search("AuditEvent")

    def seed_patients(self, n: int) -> list[str]:
        """Create `n` synthetic patients with their records and return the patients' ids, in order."""
        if n < 0:
            raise ValueError("n must not be negative")
        population = seed_population(self.store, self._seed_rng, self._clock, n)
        self.population = Population(self.population.patients + population.patients)
        return population.patient_ids


def _health_router(settings: MedplumSettings) -> APIRouter:
    router = APIRouter()
    body = {"ok": True, "version": settings.version, "platform": settings.platform, "runtime": settings.runtime,
            "postgres": True, "redis": True, "redisInstances": {"default": True}}

    @router.get("/healthcheck")
    async def healthcheck() -> JSONResponse:
        return JSONResponse(body)

    return router


def create_medplum(settings: MedplumSettings, clock: Clock, rng: random.Random) -> MedplumSimulator:
    """A Medplum simulator on `clock`, all of whose randomness comes from `rng`."""
    store_rng, token_rng, admin_rng, seed_rng, project_rng, registry_rng, fhir_rng = (_fork(rng) for _ in range(7))
    project_id = settings.project_id or rng_uuid(project_rng)
    personality = medplum_personality(settings)
    store = store_for(personality, clock, store_rng)
    tokens = TokenStore(clock, token_rng, settings.token_lifetime_s)
    registry = ClientRegistry(clock, registry_rng)
    for client_id, secret in settings.clients.items():
        registry.register(client_id, secret=secret.get_secret_value(), scopes=list(settings.client_scopes))
    limiters = {
        "requests": WindowRateLimiter(clock, settings.rate_limit_per_minute, MINUTE),
        "auth": WindowRateLimiter(clock, settings.auth_rate_limit_per_minute, MINUTE),
        "fhir_user": WindowRateLimiter(clock, settings.fhir_quota_per_minute, MINUTE,
                                       enabled=settings.enable_fhir_quota),
        "fhir_project": WindowRateLimiter(clock, settings.fhir_quota_per_minute * settings.project_quota_multiplier,
                                          MINUTE, enabled=settings.enable_fhir_quota),
    }
    quota = FhirQuota(limiters["fhir_user"], limiters["fhir_project"], project_id)

    api = simulator_api(openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                        title="Medplum (ehrlab simulator)", version=settings.version)
    install_outcome_handlers(api)
    api.include_router(oauth_router(registry, tokens, project_id))
    api.include_router(_health_router(settings))
    audit = AuditTrail(store, clock) if settings.audit_events else None
    fhir = fhir_router(store=store, personality=personality, clock=clock, rng=fhir_rng,
                       authorize=medplum_authorizer(tokens, quota, audit.flush if audit is not None else None),
                       on_interaction=audit.hook if audit is not None else None)
    # Served by `FhirFastPath`, innermost (see `simulators.fhir.dispatch`); the included copy documents them.
    api.include_router(fhir, prefix=FHIR_BASE)
    document_fhir(api, personality, [FHIR_BASE])
    api.add_middleware(FhirFastPath, prefix=FHIR_BASE, fhir=fhir_asgi(fhir), handlers=api.exception_handlers)
    api.add_middleware(FhirGate, tokens=tokens)
    api.add_middleware(RequestRateLimit, requests=limiters["requests"], auth=limiters["auth"])
    simulation = assemble(api, name="medplum", clock=clock, rng=admin_rng,
                          admin_token=settings.admin_token.get_secret_value(), registry=registry, tokens=tokens,
                          store=store, limiters=limiters)
    return MedplumSimulator(simulation=simulation, store=store, tokens=tokens, registry=registry, settings=settings,
                            project_id=project_id, clock=clock, seed_rng=seed_rng, audit=audit)
