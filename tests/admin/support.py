"""A small vendor-like simulator built on the admin package, and helpers to talk to it in process.

`make_mini()` builds a FastAPI app with a token endpoint (client secret in the form), a FHIR-ish read
that checks the bearer token, the SMART scope and a per-client rate limit (and sets
`request.state.ehrlab_client`), an unauthenticated `/ping`, and `/big` (a JSON body of a known
size); then `assemble`s the admin API around it. Everything runs on the virtual clock.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from harness.clock import VirtualClock
from integrations.clock import Clock
from simulators.admin.assemble import Simulation, assemble
from simulators.admin.clients import ClientRegistry, narrow_scopes, scope_allows
from simulators.admin.ratelimit import WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.fhir.outcome import OutcomeError, install_outcome_handlers, operation_outcome
from simulators.fhir.store import ResourceStore, integer_versions, uuid_ids
from simulators.transport import VirtualTransport

ADMIN_TOKEN = "admin-token-for-admin-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLIENT_A = "client-a"
SECRET_A = "secret-of-client-a-0001"
CLIENT_B = "client-b"
SECRET_B = "secret-of-client-b-0002"
BASE_URL = "http://mini.test"
BIG_ITEMS = 100


@dataclass
class Mini:
    sim: Simulation
    api: FastAPI
    registry: ClientRegistry
    tokens: TokenStore
    store: ResourceStore
    limiter: WindowRateLimiter
    clock: Clock


def make_mini(seed: int = 3, clock: Clock | None = None, *, limit: int = 1000, window_s: float = 60.0,
              token_lifetime_s: float = 300.0) -> Mini:
    clock = clock or VirtualClock()
    rng = random.Random(seed)
    registry = ClientRegistry(clock, random.Random(rng.getrandbits(64)))
    tokens = TokenStore(clock, random.Random(rng.getrandbits(64)), token_lifetime_s)
    store = ResourceStore(clock, new_id=uuid_ids(random.Random(rng.getrandbits(64))), new_version=integer_versions())
    limiter = WindowRateLimiter(clock, limit=limit, window_s=window_s)
    registry.register(CLIENT_A, secret=SECRET_A, scopes=["system/*.cruds"])
    registry.register(CLIENT_B, secret=SECRET_B, scopes=["system/Patient.read"])

    app = FastAPI()
    install_outcome_handlers(app)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode("utf-8")))
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scope = form.get("scope", "")
        if not registry.verify_secret(client_id, client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        allowed = registry.scopes(client_id)
        granted = narrow_scopes(scope.split(), allowed) if scope else allowed
        issued = tokens.issue(client_id, granted)
        request.state.ehrlab_client = client_id
        return JSONResponse({"access_token": issued.value, "expires_in": issued.expires_in,
                             "scope": " ".join(granted)})

    @app.get("/fhir/{resource_type}/{resource_id}")
    async def read(request: Request, resource_type: str, resource_id: str) -> JSONResponse:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        grant = tokens.check(value) if scheme.lower() == "bearer" else None
        if grant is None:
            raise OutcomeError(401, operation_outcome("login", "Unauthorized"))
        request.state.ehrlab_client = grant.client_id
        decision = limiter.hit(grant.client_id)
        if not decision.allowed:
            raise OutcomeError(429, operation_outcome("throttled", "Too Many Requests"),
                               {"RateLimit": f'"requests";r={decision.remaining};t={int(decision.reset_s)}'})
        if not scope_allows(grant.scopes, resource_type, "read"):
            raise OutcomeError(403, operation_outcome("forbidden", "Forbidden"))
        try:
            resource = store.read(resource_type, resource_id)
        except Exception:
            raise OutcomeError(404, operation_outcome("not-found", "Not found")) from None
        return JSONResponse(resource, headers={"ETag": f'W/"{resource["meta"]["versionId"]}"'})

    @app.get("/ping")
    async def ping() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.post("/ping")
    async def ping_post() -> JSONResponse:
        return JSONResponse({"ok": True, "posted": True})

    @app.get("/big")
    async def big() -> JSONResponse:
        return JSONResponse({"items": [f"item-{i:04d}" for i in range(BIG_ITEMS)]})

    sim = assemble(app, name="mini", clock=clock, rng=rng, admin_token=ADMIN_TOKEN, registry=registry,
                   tokens=tokens, store=store, limiters={"fhir": limiter})
    return Mini(sim=sim, api=app, registry=registry, tokens=tokens, store=store, limiter=limiter, clock=clock)


@asynccontextmanager
async def client_for(app: Any, base_url: str = BASE_URL) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=VirtualTransport(app), base_url=base_url) as client:
        yield client


async def get_token(client: httpx.AsyncClient, client_id: str = CLIENT_A, secret: str = SECRET_A,
                    scope: str = "") -> str:
    data = {"client_id": client_id, "client_secret": secret}
    if scope:
        data["scope"] = scope
    response = await client.post("/token", data=data)
    assert response.status_code == 200, response.text
    value = response.json()["access_token"]
    assert isinstance(value, str)
    return value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def put_fault(client: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> str:
    """Start a fault; returns its id."""
    response = await client.put(f"/admin/chaos/{kind}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    fault_id = response.json()["id"]
    assert isinstance(fault_id, str)
    return fault_id


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female",
            "birthDate": "1980-02-03", **fields}
