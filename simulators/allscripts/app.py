"""Build an Allscripts (Veradigm) simulator: Unity API, a read-only FHIR R4 base, its token endpoint, admin API.

Allscripts' personality (reference/vendors.md §4):
- Unity JSON API at `/Unity/UnityService.svc/json/{GetToken,MagicJson,RetireSecurityToken}`
  (`simulators.allscripts.unity`), errors in HTTP 200 bodies, token lifetime a setting;
- FHIR R4 at `/FHIR` (a setting), **read-only**: "limited to read-only access and not write-backs".
  How a write is refused is not documented, so it is `write_status`, default 405 with an
  OperationOutcome (`not-supported`);
- a client-credentials token endpoint at `/authorization/connect/token` with `client_secret` in the
  form and `expires_in` 1200 (`simulators.allscripts.oauth`);
- integer version ids, 404 for a deleted resource, unknown search parameters ignored, no
  `_history`, `$everything` or batch; Bulk Data `$export` (the system/bulk flow exists, §4);
- per-client limit: runbook 004_bc3882054056792c.txt ("Rate Limiting": "Allscripts: Varies by
  agreement") gives no number, so the default is effectively unlimited and the admin API can set one.

One store serves both APIs, so Unity's GetPatient reads what FHIR serves (and what drift changed).
Randomness is split into independent streams in a fixed order (store, tokens, registry, FHIR core,
admin/chaos, seed data).
"""

from __future__ import annotations

import random

from fastapi import FastAPI

from integrations.clock import Clock
from simulators.admin.assemble import Simulation, assemble
from simulators.admin.clients import ClientRegistry
from simulators.admin.ratelimit import RateDecision, WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.allscripts.oauth import AllscriptsTokenEndpoint
from simulators.allscripts.settings import AllscriptsSettings
from simulators.allscripts.unity import UNITY_SCOPE, UnityActions, UnityService
from simulators.epic.bearer import BearerAuthorizer, BearerErrors, TokenProblem
from simulators.fhir.api import fhir_router
from simulators.fhir.interaction import Interaction
from simulators.fhir.openapi_doc import document_fhir
from simulators.fhir.outcome import OutcomeError, install_outcome_handlers
from simulators.fhir.personality import FhirPersonality, default_outcome
from simulators.fhir.store import ResourceStore, integer_versions, uuid_ids
from simulators.fhir.synthetic import seed_population


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


def allscripts_personality(settings: AllscriptsSettings) -> FhirPersonality:
    return FhirPersonality(
        name="allscripts", version_ids="integer", read_only=True, read_only_status=settings.write_status,
        deleted_read_status=404, unknown_search_param="ignore", supports_patch=False, supports_history=False,
        supports_everything=False, supports_export=True, supports_batch=False,
        supports_conditional_create=False, supports_conditional_update=False,
        software_name="Veradigm FHIR API", software_version="R4", outcome=default_outcome,
    )


def _errors(personality: FhirPersonality) -> BearerErrors:
    def unauthorized(problem: TokenProblem) -> OutcomeError:
        return OutcomeError(401, personality.error(401, "login", "Unauthorized"),
                            {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def forbidden(resource_type: str, interaction: Interaction) -> OutcomeError:
        return OutcomeError(403, personality.error(403, "forbidden", "Insufficient scope"))

    def throttled(decision: RateDecision) -> OutcomeError:
        return OutcomeError(429, personality.error(429, "throttled", "Too many requests"))

    return BearerErrors(unauthorized=unauthorized, forbidden=forbidden, throttled=throttled)


class AllscriptsSimulator:
    """One fake Allscripts/Veradigm server: Unity plus read-only FHIR over one store."""

    def __init__(self, *, simulation: Simulation, settings: AllscriptsSettings, store: ResourceStore,
                 registry: ClientRegistry, tokens: TokenStore, limiter: WindowRateLimiter, unity: UnityService,
                 personality: FhirPersonality, clock: Clock, seed_rng: random.Random) -> None:
        self.app = simulation.app
        self.simulation = simulation
        self.chaos = simulation.chaos
        self.journal = simulation.journal
        self.settings = settings
        self.store = store
        self.registry = registry
        self.tokens = tokens
        self.limiter = limiter
        self.unity = unity
        self.personality = personality
        self._clock = clock
        self._seed_rng = seed_rng

    def __repr__(self) -> str:
        return f"AllscriptsSimulator(fhir_path={self.fhir_path!r}, clients={self.registry.client_ids()!r})"

    @property
    def fhir_path(self) -> str:
        return self.settings.fhir_path

    @property
    def token_path(self) -> str:
        return self.settings.token_path

    def seed_patients(self, n: int) -> list[str]:
        """Create `n` synthetic patients with their records; their ids, in order."""
        return seed_population(self.store, self._seed_rng, self._clock, n).patient_ids


def create_allscripts(settings: AllscriptsSettings, clock: Clock, rng: random.Random) -> AllscriptsSimulator:
    """An Allscripts simulator on `clock`, all of whose randomness comes from `rng`.

    Registering the clients stamps their credentials with `clock.now()`, so with a `VirtualClock`
    call it inside the running event loop (as the lab does).
    """
    store_rng, token_rng, registry_rng, fhir_rng, admin_rng, seed_rng = (_fork(rng) for _ in range(6))
    store = ResourceStore(clock, new_id=uuid_ids(store_rng), new_version=integer_versions(1))
    registry = ClientRegistry(clock, registry_rng)
    for client in settings.clients:
        registry.register(client.client_id, secret=client.secret.get_secret_value(), scopes=client.scopes)
    tokens = TokenStore(clock, token_rng, settings.token_lifetime_s)
    limiter = WindowRateLimiter(clock, settings.rate_limit_per_window, settings.rate_limit_window_s)
    personality = allscripts_personality(settings)
    authorizer = BearerAuthorizer(tokens, _errors(personality), limiter=limiter, marker_scopes=(UNITY_SCOPE,))
    endpoint = AllscriptsTokenEndpoint(path=settings.token_path, registry=registry, tokens=tokens,
                                       lifetime_s=settings.token_lifetime_s)
    unity = UnityService(registry=registry, tokens=tokens,
                         actions=UnityActions(store, clock, product_version=settings.unity_product_version,
                                              system=settings.unity_system),
                         appname=settings.unity_appname, lifetime_s=settings.unity_token_lifetime_s, limiter=limiter)

    api = FastAPI(title="ehrlab Allscripts simulator", docs_url=None, redoc_url=None)
    install_outcome_handlers(api)
    api.include_router(endpoint.router())
    api.include_router(unity.router())
    api.include_router(fhir_router(store=store, personality=personality, clock=clock, rng=fhir_rng,
                                   authorize=authorizer), prefix=settings.fhir_path)
    document_fhir(api, personality, [settings.fhir_path])
    simulation = assemble(api, name="allscripts", clock=clock, rng=admin_rng,
                          admin_token=settings.admin_token.get_secret_value(), registry=registry, tokens=tokens,
                          store=store, limiters={"fhir": limiter}, client_resolver=authorizer.client_of,
                          reseed=lambda n: seed_population(store, seed_rng, clock, n))
    return AllscriptsSimulator(simulation=simulation, settings=settings, store=store, registry=registry,
                               tokens=tokens, limiter=limiter, unity=unity, personality=personality, clock=clock,
                               seed_rng=seed_rng)
