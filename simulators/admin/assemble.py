"""Put the admin API on a simulator: `assemble(app, ...) -> Simulation`.

A vendor builds its FastAPI app, then calls `assemble` once. It mounts, under `/admin` and behind
`Authorization: Bearer <admin_token>` (constant-time comparison, `simulators.admin.auth`):

    /admin/chaos...        faults (simulators.admin.chaos_api)            always
    /admin/requests        the request journal (simulators.admin.journal) always
    /admin/reset           clear faults, journal, limiter counters; optionally tokens, data, re-seed
    /admin/clients...      credentials and rotation                       when a registry is given
    /admin/tokens...       forced token expiry and revocation             when a token store is given
    /admin/rate-limits...  limiter settings at run time                   when limiters are given
    /admin/drift...        data drift (`?tenant=` picks a tenant_stores entry) when a store is given

and wraps the app: `RequestJournalMiddleware(ChaosMiddleware(app))`, so the journal sees what the
chaos layer did (outages, drops) and the chaos layer never touches `/admin`. The chaos layer's
decisions come from a stream forked off `rng`; fault ids from a counter.

Clients: a vendor app sets `request.state.ehrlab_client = client_id` once it has authenticated a
call (the journal reads it). Chaos scoping by client happens before the app runs, so it asks
`client_resolver(scope)`; without one, and with a token store, the default resolver maps the
request's `Authorization: Bearer` token to its client (`TokenStore.inspect`, so an expired token
still names its client). Vendors whose tokens travel elsewhere (Unity's body) pass their own.

Reset (`POST /admin/reset`, every field optional): faults, journal and rate-limit counters are
cleared by default; `tokens: true` forgets every access token; `reseed: {"patients": n, "seed": s}`
empties the store and seeds `n` synthetic patients with `seed_population` from `random.Random(s)`
(`seed` omitted: drawn from the simulator's rng), or with the vendor's own `reseed(n)` if it gave one.
Ids of re-seeded resources continue the store's id stream, so they differ from the first seeding's.

OpenAPI: every admin route is typed and tagged `admin: ...` and declares the `adminToken` bearer
scheme, so a vendor app that serves `/openapi.json` documents its admin API.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Body, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.types import ASGIApp, Scope

from integrations.clock import Clock
from simulators.admin.access_api import credentials_router, rate_limits_router, tokens_router
from simulators.admin.auth import ADMIN_SECURITY, admin_route_class
from simulators.admin.clients import ClientRegistry
from simulators.admin.drift_api import drift_router
from simulators.admin.journal import RequestJournal, RequestJournalMiddleware, journal_router
from simulators.admin.ratelimit import WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.chaos import ChaosMiddleware, ChaosState, ClientResolver, chaos_admin_router
from simulators.fhir.outcome import OutcomeError, operation_outcome
from simulators.fhir.store import ResourceStore

logger = logging.getLogger(__name__)

#: Most patients a reset may seed.
MAX_RESEED_PATIENTS = 10_000


@dataclass(eq=False)
class Simulation:
    """A simulator's app wrapped in the journal and chaos layers, with the admin state behind it."""

    app: ASGIApp
    chaos: ChaosState
    journal: RequestJournal
    name: str = ""
    limiters: dict[str, WindowRateLimiter] = field(default_factory=dict)
    registry: ClientRegistry | None = None
    tokens: TokenStore | None = None
    store: ResourceStore | None = None

    def __repr__(self) -> str:
        return f"Simulation(name={self.name!r}, faults={len(self.chaos.faults)}, journal={len(self.journal)})"


class Reseed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patients: int = Field(ge=0, le=MAX_RESEED_PATIENTS)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class ResetRequest(BaseModel):
    """What to reset; the defaults clear faults, journal and rate-limit counters."""

    model_config = ConfigDict(extra="forbid")

    faults: StrictBool = True
    journal: StrictBool = True
    rate_limits: StrictBool = True
    tokens: StrictBool = False
    reseed: Reseed | None = None


def bearer_client(tokens: TokenStore) -> ClientResolver:
    """A resolver naming the client of the request's bearer token (expired tokens included)."""

    def resolve(scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                grant = tokens.inspect(credentials.strip())
                return None if grant is None else grant.client_id
        return None

    return resolve


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


def assemble(app: FastAPI, *, name: str, clock: Clock, rng: random.Random, admin_token: str,
             registry: ClientRegistry | None, tokens: TokenStore | None, store: ResourceStore | None,
             limiters: Mapping[str, WindowRateLimiter] | None = None,
             client_resolver: ClientResolver | None = None,
             reseed: Callable[[int], object] | None = None,
             tenant_stores: Mapping[str, ResourceStore] | None = None,
             journal_capacity: int | None = None) -> Simulation:
    """Mount the admin routers on `app` and wrap it in the chaos and journal layers (see module doc)."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    chaos_rng, reseed_rng = _fork(rng), _fork(rng)
    limiter_table = limiters if isinstance(limiters, dict) else dict(limiters or {})
    resolver = client_resolver if client_resolver is not None else (
        bearer_client(tokens) if tokens is not None else None)
    chaos = ChaosState()
    journal = RequestJournal() if journal_capacity is None else RequestJournal(journal_capacity)

    app.include_router(chaos_admin_router(chaos, admin_token))
    app.include_router(journal_router(journal, admin_token))
    if registry is not None:
        app.include_router(credentials_router(registry, admin_token))
    if tokens is not None:
        app.include_router(tokens_router(tokens, admin_token))
    app.include_router(rate_limits_router(limiter_table, admin_token))
    if store is not None or tenant_stores:
        app.include_router(drift_router(store, admin_token, tenant_stores))

    resets = APIRouter(prefix="/admin", route_class=admin_route_class(admin_token), dependencies=[ADMIN_SECURITY],
                       tags=["admin: reset"])

    @resets.post("/reset", summary="Reset faults, journal and rate limits; optionally tokens and data")
    async def reset(body: Annotated[ResetRequest | None, Body()] = None) -> JSONResponse:
        request = body or ResetRequest()
        done: dict[str, object] = {}
        if request.reseed is not None and store is None:
            raise OutcomeError(400, operation_outcome("not-supported", f"{name} has no data store to re-seed"))
        if request.faults:
            chaos.reset()
            done["faults"] = True
        if request.journal:
            done["journal"] = journal.clear()
        if request.rate_limits:
            for limiter in limiter_table.values():
                limiter.reset()
            done["rate_limits"] = sorted(limiter_table)
        if request.tokens and tokens is not None:
            tokens.clear()
            done["tokens"] = True
        if request.reseed is not None and store is not None:
            store.clear()
            if reseed is not None:
                reseed(request.reseed.patients)
            else:
                from simulators.fhir.synthetic import seed_population  # Faker is slow to import: on use

                seed = request.reseed.seed if request.reseed.seed is not None else reseed_rng.getrandbits(63)
                seed_population(store, random.Random(seed), clock, request.reseed.patients)
            done["reseed"] = request.reseed.model_dump()
        logger.info("admin: %s reset (%s)", name, ", ".join(sorted(done)))
        return JSONResponse({"reset": done})

    app.include_router(resets)

    wrapped = RequestJournalMiddleware(ChaosMiddleware(app, chaos, clock, chaos_rng, client_resolver=resolver),
                                       journal, clock, client_resolver=resolver)
    return Simulation(app=wrapped, chaos=chaos, journal=journal, name=name, limiters=limiter_table,
                      registry=registry, tokens=tokens, store=store)
