"""Build an Epic simulator: SMART Backend Services token endpoint, FHIR R4 at `/api/FHIR/R4`, admin API.

Epic's personality (reference/vendors.md §1; where vendors.md marks a fact unconfirmed, the default
is the spec's and the value is in `EpicSettings`):
- paths: `<prefix>/api/FHIR/R4/` and `<prefix>/oauth2/token` (the sandbox's shape; `prefix` is the
  per-organisation part, e.g. `/interconnect-fhir-oauth`);
- ids like Epic's (`e` + 22 characters + `3`, drawn from the rng); integer version ids, ETag
  `W/"<vid>"`, 412 on a stale If-Match (vendors.md §1, "Paging, concurrency": derived);
- no conditional create (the sandbox CapabilityStatement does not advertise it), no PATCH, no
  `_history`, no batch/transaction; Bulk Data `$export` yes; an unknown search parameter is ignored
  and the page carries a 4122 warning (not an error), an empty result a 4101 warning, and a Patient
  search over `patient_results_warning` matches a 4127 warning (`epic_search_outcome`);
- OperationOutcomes with Epic's numeric codes (`simulators.epic.outcomes`);
- paging by cached search sessions: `next` links stop working `search_session_ttl_s` after the search
  (410 with code 4113, "Session ID for cached search results has expired");
- a per-client limit of 600 requests per hour (runbook 004_bc3882054056792c.txt, "Rate Limiting":
  "Epic: 600 requests/hour per client"), 429 with an OperationOutcome, Retry-After only if
  `retry_after_on_429` (vendors.md §1: Epic documents no 429 at all);
- `.well-known/smart-configuration` under the FHIR base, with the capabilities vendors.md lists and an
  absolute `token_endpoint` built from the request's origin.

Randomness: `create_epic` splits the rng into independent streams in a fixed order (store, tokens,
registry, FHIR core, admin/chaos, seed data), so e.g. a chaos decision never shifts an id or a token.
"""

from __future__ import annotations

import random

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from integrations.clock import Clock
from simulators.admin.assemble import Simulation, assemble
from simulators.admin.clients import ClientRegistry
from simulators.admin.ratelimit import RateDecision, WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.epic.assertion import AssertionVerifier, JwksFetcher
from simulators.epic.bearer import BearerAuthorizer, BearerErrors, TokenProblem
from simulators.epic.oauth import EpicTokenEndpoint
from simulators.epic.outcomes import epic_outcome_factory, epic_search_outcome
from simulators.epic.settings import EpicSettings
from simulators.fhir.api import fhir_router
from simulators.fhir.interaction import Interaction
from simulators.fhir.openapi_doc import document_fhir
from simulators.fhir.outcome import OutcomeError, install_outcome_handlers
from simulators.fhir.personality import FhirPersonality
from simulators.fhir.store import IdFactory, ResourceStore, integer_versions
from simulators.fhir.synthetic import seed_population

FHIR_PATH = "/api/FHIR/R4"
TOKEN_PATH = "/oauth2/token"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-"


def epic_ids(rng: random.Random) -> IdFactory:
    """Ids shaped like Epic's FHIR ids (`eXXXXXXXXXXXXXXXXXXXXXX3`), drawn from `rng`."""
    return lambda: "e" + "".join(rng.choice(_ID_CHARS) for _ in range(22)) + "3"


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


def epic_personality(settings: EpicSettings, base: str) -> FhirPersonality:
    return FhirPersonality(
        name="epic", version_ids="integer", stale_version_status=412, deleted_read_status=410,
        put_create_status=201, invalid_resource_status=400, supports_patch=False, supports_conditional_create=False,
        unknown_search_param="ignore", paging="cursor", cursor_ttl_s=settings.search_session_ttl_s,
        supports_history=False, supports_everything=False, supports_export=True,
        supports_batch=False, software_name="Epic", software_version=settings.software_version,
        smart_configuration={
            "token_endpoint": f"{base}{TOKEN_PATH}",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": ["system/*.read", "system/*.rs"],
            "capabilities": ["permission-v1", "permission-v2", "client-confidential-asymmetric"],
        },
        outcome=epic_outcome_factory(settings.error_code_system),
        search_outcome=epic_search_outcome(settings.error_code_system,
                                           patient_results_warning=settings.patient_results_warning),
    )


def _smart_configuration_router(personality: FhirPersonality, fhir_path: str, token_path: str) -> APIRouter:
    """`.well-known/smart-configuration` with absolute URLs built from the request's own origin (SMART
    requires absolute URLs; the personality's copy, which the CapabilityStatement uses, holds paths)."""
    router = APIRouter()
    template = dict(personality.smart_configuration or {})

    # Registered before the core's route for the same path, which it shadows (and documents in OpenAPI).
    @router.get(fhir_path + "/.well-known/smart-configuration", include_in_schema=False)
    async def smart_configuration(request: Request) -> JSONResponse:
        origin = str(request.base_url).rstrip("/")
        return JSONResponse({**template, "token_endpoint": origin + token_path})

    return router


def _errors(personality: FhirPersonality, settings: EpicSettings) -> BearerErrors:
    def unauthorized(problem: TokenProblem) -> OutcomeError:
        text = "Authentication required" if problem == "missing" else "The access token is invalid or has expired"
        return OutcomeError(401, personality.error(401, "login", text),
                            {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def forbidden(resource_type: str, interaction: Interaction) -> OutcomeError:
        return OutcomeError(403, personality.error(403, "forbidden", "User not authorized for request"))

    def throttled(decision: RateDecision) -> OutcomeError:
        headers = {"Retry-After": str(max(1, round(decision.reset_s)))} if settings.retry_after_on_429 else {}
        return OutcomeError(429, personality.error(429, "throttled", "Too many requests"), headers)

    return BearerErrors(unauthorized=unauthorized, forbidden=forbidden, throttled=throttled)


class EpicSimulator:
    """One fake Epic organisation. `app` is the ASGI app to serve or mount (admin journal and chaos outermost)."""

    def __init__(self, *, simulation: Simulation, settings: EpicSettings, store: ResourceStore,
                 registry: ClientRegistry, tokens: TokenStore, limiter: WindowRateLimiter,
                 verifier: AssertionVerifier, personality: FhirPersonality, clock: Clock,
                 seed_rng: random.Random) -> None:
        self.app = simulation.app
        self.simulation = simulation
        self.chaos = simulation.chaos
        self.journal = simulation.journal
        self.settings = settings
        self.store = store
        self.registry = registry
        self.tokens = tokens
        self.limiter = limiter
        self.verifier = verifier
        self.personality = personality
        self._clock = clock
        self._seed_rng = seed_rng

    def __repr__(self) -> str:
        return f"EpicSimulator(fhir_path={self.fhir_path!r}, clients={self.registry.client_ids()!r})"

    @property
    def fhir_path(self) -> str:
        return self.settings.path_prefix + FHIR_PATH

    @property
    def token_path(self) -> str:
        return self.settings.path_prefix + TOKEN_PATH

    def seed_patients(self, n: int) -> list[str]:
        """Create `n` synthetic patients with their records; their ids, in order."""
        return seed_population(self.store, self._seed_rng, self._clock, n).patient_ids


def create_epic(settings: EpicSettings, clock: Clock, rng: random.Random, *,
                jwks_transport: httpx.AsyncBaseTransport | None = None) -> EpicSimulator:
    """An Epic simulator on `clock`, all of whose randomness comes from `rng`.

    `jwks_transport` carries JWKS URL fetches (in virtual mode an in-process transport; default: sockets).

    Registering the clients stamps their credentials with `clock.now()`, so with a `VirtualClock`
    call it inside the running event loop (as the lab does).
    """
    store_rng, token_rng, registry_rng, fhir_rng, admin_rng, seed_rng = (_fork(rng) for _ in range(6))
    prefix = settings.path_prefix
    store = ResourceStore(clock, new_id=epic_ids(store_rng), new_version=integer_versions(1))
    registry = ClientRegistry(clock, registry_rng)
    for client in settings.clients:
        registry.register(client.client_id, jwks=client.jwks, jwks_url=client.jwks_url, scopes=client.scopes)
    tokens = TokenStore(clock, token_rng, settings.token_lifetime_s)
    limiter = WindowRateLimiter(clock, settings.rate_limit_per_window, settings.rate_limit_window_s)

    def jwks_url(client_id: str) -> str | None:
        info = registry.get(client_id)
        return None if info is None else info.jwks_url

    verifier = AssertionVerifier(
        clock, registry, jwks_urls=jwks_url,
        fetcher=JwksFetcher(clock, jwks_transport, default_ttl_s=settings.jwks_cache_ttl_s),
        max_lifetime_s=settings.assertion_max_lifetime_s, leeway_s=settings.clock_skew_s,
        require_typ=settings.require_typ)
    personality = epic_personality(settings, prefix)
    authorizer = BearerAuthorizer(tokens, _errors(personality, settings), limiter=limiter)
    endpoint = EpicTokenEndpoint(path=prefix + TOKEN_PATH, verifier=verifier, registry=registry, tokens=tokens,
                                 lifetime_s=settings.token_lifetime_s, audiences=settings.audiences,
                                 error_descriptions=settings.error_descriptions)

    api = FastAPI(title="ehrlab Epic simulator", docs_url=None, redoc_url=None)
    install_outcome_handlers(api)
    api.include_router(endpoint.router())
    api.include_router(_smart_configuration_router(personality, prefix + FHIR_PATH, prefix + TOKEN_PATH))
    api.include_router(fhir_router(store=store, personality=personality, clock=clock, rng=fhir_rng,
                                   authorize=authorizer), prefix=prefix + FHIR_PATH)
    document_fhir(api, personality, [prefix + FHIR_PATH])
    simulation = assemble(api, name="epic", clock=clock, rng=admin_rng,
                          admin_token=settings.admin_token.get_secret_value(), registry=registry, tokens=tokens,
                          store=store, limiters={"fhir": limiter}, client_resolver=authorizer.client_of,
                          reseed=lambda n: seed_population(store, seed_rng, clock, n))
    return EpicSimulator(simulation=simulation, settings=settings, store=store, registry=registry, tokens=tokens,
                         limiter=limiter, verifier=verifier, personality=personality, clock=clock, seed_rng=seed_rng)
