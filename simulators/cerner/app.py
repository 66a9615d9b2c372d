"""Build a Cerner (Oracle Health Millennium R4) simulator: tenants, system-account tokens, FHIR, admin API.

Cerner's personality (reference/vendors.md §2):
- FHIR at `/r4/{tenant}/`, one store per tenant ("the same id under another tenant is a different
  patient"); an unknown tenant answers 403 "Tenant not valid or accessible"; a token issued for one
  tenant is not valid at another (401);
- token endpoint `/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token` (`simulators.cerner.oauth`),
  `expires_in` 570;
- integer version ids starting at "0" (`W/"0"` on create), **409** on an update with an out-of-date
  version (not 412), PATCH (JSON Patch) supported, 422 for a resource that fails validation
  (business rule), unknown search parameters ignored, `_count` default 20, bulk status polls answered
  with `Retry-After: 600`;
- a 401 carries `WWW-Authenticate: Bearer realm="fhir-ehr-code.cerner.com", error="invalid_token",
  error_description="Token has expired or signature is invalid"`;
- answers in `application/json+fhir` (the metadata example) and carry an `X-Request-Id`;
- a per-client limit of 10,000 requests per hour (runbook 004_bc3882054056792c.txt, "Rate Limiting":
  "Cerner: 10,000 requests/hour per client"), 429 OperationOutcome `throttled` "Too many requests".

The admin API's store (drift, reset) is the first tenant's. Randomness is split into independent
streams in a fixed order (stores, tokens, registry, OAuth error ids, FHIR core, admin/chaos, seed
data, request ids).
"""

from __future__ import annotations

import random
from dataclasses import replace

from fastapi import APIRouter, FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.clock import Clock
from simulators.admin.assemble import Simulation, assemble
from simulators.admin.clients import ClientRegistry
from simulators.admin.ratelimit import RateDecision, WindowRateLimiter
from simulators.admin.tokens import Grant, TokenStore
from simulators.cerner.oauth import CernerTokenEndpoint
from simulators.cerner.settings import CernerSettings
from simulators.epic.bearer import BearerAuthorizer, BearerErrors, TokenProblem
from simulators.fhir.api import fhir_router
from simulators.fhir.interaction import Interaction
from simulators.fhir.openapi_doc import document_fhir
from simulators.fhir.outcome import OutcomeError, OutcomeRoute, install_outcome_handlers
from simulators.fhir.personality import FhirPersonality, default_outcome
from simulators.fhir.store import ResourceStore, integer_versions, rng_uuid, uuid_ids
from simulators.fhir.synthetic import seed_population

FHIR_PREFIX = "/r4"
TENANT_NOT_VALID = "Tenant not valid or accessible"


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


def cerner_personality(settings: CernerSettings) -> FhirPersonality:
    return FhirPersonality(
        name="cerner", version_ids="integer", first_version=0, stale_version_status=409, deleted_read_status=404,
        put_create_status=201, invalid_resource_status=422, supports_patch=True, unknown_search_param="ignore",
        default_count=20, supports_history=False, supports_everything=False, supports_export=True,
        supports_batch=False, export_retry_after_s=settings.export_retry_after_s,
        software_name="Oracle Health Millennium", software_version=settings.software_version,
        media_type=settings.media_type, outcome=default_outcome,
    )


class _RequestId:
    """Pure ASGI middleware: an `X-Request-Id` (from the rng) on every answer, as Cerner sends one."""

    def __init__(self, app: ASGIApp, rng: random.Random) -> None:
        self.app = app
        self._rng = rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = rng_uuid(self._rng)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                   (b"x-request-id", request_id.encode("ascii"))]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _errors(personality: FhirPersonality, settings: CernerSettings) -> BearerErrors:
    challenge = (f'Bearer realm="{settings.realm}", error="invalid_token", '
                 'error_description="Token has expired or signature is invalid"')

    def unauthorized(problem: TokenProblem) -> OutcomeError:
        return OutcomeError(401, personality.error(401, "login", "Token has expired or signature is invalid"),
                            {"WWW-Authenticate": challenge})

    def forbidden(resource_type: str, interaction: Interaction) -> OutcomeError:
        return OutcomeError(403, personality.error(403, "forbidden",
                                                   f"The token does not grant {interaction} on {resource_type}"))

    def throttled(decision: RateDecision) -> OutcomeError:
        headers = {"Retry-After": str(max(1, round(decision.reset_s)))} if settings.retry_after_on_429 else {}
        return OutcomeError(429, personality.error(429, "throttled", "Too many requests"), headers)

    return BearerErrors(unauthorized=unauthorized, forbidden=forbidden, throttled=throttled)


def _unknown_tenant_router(personality: FhirPersonality) -> APIRouter:
    router = APIRouter(route_class=OutcomeRoute)

    async def unknown_tenant(tenant: str, rest: str = "") -> None:
        raise OutcomeError(403, personality.error(403, "forbidden", TENANT_NOT_VALID))

    for path in (FHIR_PREFIX + "/{tenant}", FHIR_PREFIX + "/{tenant}/{rest:path}"):
        router.add_api_route(path, unknown_tenant, methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                             summary="Any tenant this server does not serve: 403", include_in_schema=False)
    return router


class CernerSimulator:
    """One fake Cerner Millennium server with one or more tenants."""

    def __init__(self, *, simulation: Simulation, settings: CernerSettings, stores: dict[str, ResourceStore],
                 registry: ClientRegistry, tokens: TokenStore, limiter: WindowRateLimiter,
                 personality: FhirPersonality, clock: Clock, seed_rng: random.Random) -> None:
        self.app = simulation.app
        self.simulation = simulation
        self.chaos = simulation.chaos
        self.journal = simulation.journal
        self.settings = settings
        self.stores = stores
        self.tenant = settings.tenants[0]
        self.store = stores[self.tenant]
        self.registry = registry
        self.tokens = tokens
        self.limiter = limiter
        self.personality = personality
        self._clock = clock
        self._seed_rng = seed_rng

    def __repr__(self) -> str:
        return f"CernerSimulator(tenants={list(self.stores)!r}, clients={self.registry.client_ids()!r})"

    def fhir_path(self, tenant: str | None = None) -> str:
        return f"{FHIR_PREFIX}/{tenant or self.tenant}"

    def token_path(self, tenant: str | None = None) -> str:
        return f"/tenants/{tenant or self.tenant}/protocols/oauth2/profiles/smart-v1/token"

    def seed_patients(self, n: int, tenant: str | None = None) -> list[str]:
        """Create `n` synthetic patients with their records in `tenant` (default: the first); their ids."""
        return seed_population(self.stores[tenant or self.tenant], self._seed_rng, self._clock, n).patient_ids


def create_cerner(settings: CernerSettings, clock: Clock, rng: random.Random) -> CernerSimulator:
    """A Cerner simulator on `clock`, all of whose randomness comes from `rng`.

    Registering the clients stamps their credentials with `clock.now()`, so with a `VirtualClock`
    call it inside the running event loop (as the lab does).
    """
    store_rng, token_rng, registry_rng, oauth_rng, fhir_rng, admin_rng, seed_rng, request_rng = (
        _fork(rng) for _ in range(8))
    stores = {tenant: ResourceStore(clock, new_id=uuid_ids(store_rng), new_version=integer_versions(0))
              for tenant in settings.tenants}
    registry = ClientRegistry(clock, registry_rng)
    for client in settings.clients:
        registry.register(client.client_id, secret=client.secret.get_secret_value(), scopes=client.scopes,
                          tenant=client.tenant)
    tokens = TokenStore(clock, token_rng, settings.token_lifetime_s)
    limiter = WindowRateLimiter(clock, settings.rate_limit_per_window, settings.rate_limit_window_s)
    personality = cerner_personality(settings)
    errors = _errors(personality, settings)

    def admit(request: Request, grant: Grant) -> None:
        info = registry.get(grant.client_id)
        if info is None or info.tenant != request.path_params.get("tenant", _tenant_of(request.url.path)):
            raise errors.unauthorized("invalid")

    authorizer = BearerAuthorizer(tokens, errors, limiter=limiter, admit=admit, contexts=("system",))
    endpoint = CernerTokenEndpoint(tenants=settings.tenants, registry=registry, tokens=tokens,
                                   lifetime_s=settings.token_lifetime_s, rng=oauth_rng,
                                   error_uri_base=settings.error_uri_base)

    api = FastAPI(title="ehrlab Cerner simulator", docs_url=None, redoc_url=None)
    install_outcome_handlers(api)
    api.include_router(endpoint.router())
    for tenant, store in stores.items():
        api.include_router(fhir_router(store=store, personality=personality, clock=clock, rng=_fork(fhir_rng),
                                       authorize=authorizer), prefix=f"{FHIR_PREFIX}/{tenant}")
    api.include_router(_unknown_tenant_router(personality))
    document_fhir(api, personality, [f"{FHIR_PREFIX}/{tenant}" for tenant in stores])
    first = stores[settings.tenants[0]]
    simulation = assemble(api, name="cerner", clock=clock, rng=admin_rng,
                          admin_token=settings.admin_token.get_secret_value(), registry=registry, tokens=tokens,
                          store=first, limiters={"fhir": limiter}, client_resolver=authorizer.client_of,
                          reseed=lambda n: seed_population(first, seed_rng, clock, n))
    # Outermost, so chaos answers carry a request id too.
    simulation = replace(simulation, app=_RequestId(simulation.app, request_rng))
    return CernerSimulator(simulation=simulation, settings=settings, stores=stores, registry=registry, tokens=tokens,
                           limiter=limiter, personality=personality, clock=clock, seed_rng=seed_rng)


def _tenant_of(path: str) -> str:
    parts = path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == FHIR_PREFIX.strip("/") else ""
