"""Fault injection for every simulator: a pure ASGI middleware and the admin API that drives it.

`ChaosMiddleware` wraps a simulator's whole app (outermost, the shape of Starlette's
`TrustedHostMiddleware`) and applies the faults in `ChaosState` to every HTTP request whose path is
not exempt (`/admin` by default, so the faults can always be switched off). Each fault is optional
and independent; per request they apply in this order:

1. outage: `status` mode answers `status` (default 503) with an OperationOutcome (code `transient`);
   `drop` mode raises `ConnectionDropped`, which the serving layer turns into a closed connection
   with no response (`simulators.transport`, `simulators.server`);
2. latency: sleeps a uniform `[min_ms, max_ms]` on the injected clock (virtual time in CI);
3. error rate: with probability `probability`, answers `status` (default 500) with an OperationOutcome;
4. the app.

Determinism: the middleware draws from its own `random.Random` only to decide: one `uniform` per
request while latency is on, one `random()` per request while the error rate is on. Exempt paths
and faults that are off draw nothing, so a replay with the same seed and timeline decides the same.

Admin API (`chaos_admin_router`, mounted at `/admin/chaos`, `Authorization: Bearer <admin token>`):
`GET` state; `PUT /outage|/latency|/error-rate` start or replace one fault; `DELETE` one of them,
or `DELETE /admin/chaos` for all. Every PUT/DELETE answers 200 with the new state.
"""

from __future__ import annotations

import hmac
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request, params
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.clock import Clock
from simulators.errors import ConnectionDropped
from simulators.fhir.outcome import (
    OutcomeError,
    OutcomeRoute,
    fhir_response,
    issue_code_for_status,
    operation_outcome,
    status_phrase,
)

logger = logging.getLogger(__name__)

#: Longest latency the admin API accepts: 10 minutes (beyond that, use an outage).
MAX_LATENCY_MS = 600_000


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outage(_Fault):
    """Every call fails: an error status with an OperationOutcome, or a dropped connection."""

    mode: Literal["status", "drop"] = "status"
    status: int = Field(default=503, ge=400, le=599)


class Latency(_Fault):
    """Every call is delayed by a uniform random time in [min_ms, max_ms] milliseconds."""

    min_ms: int = Field(ge=0, le=MAX_LATENCY_MS)
    max_ms: int = Field(ge=0, le=MAX_LATENCY_MS)

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.min_ms > self.max_ms:
            raise ValueError("min_ms must not exceed max_ms")
        return self


class ErrorRate(_Fault):
    """Each call fails with `status` with probability `probability`."""

    probability: float = Field(ge=0.0, le=1.0)
    status: int = Field(default=500, ge=400, le=599)


@dataclass
class ChaosCounters:
    """How many requests each fault has affected since the simulator started."""

    outage: int = 0
    latency: int = 0
    error_rate: int = 0


@dataclass
class ChaosState:
    """The faults currently on; `None` means off. Shared by the middleware and the admin API."""

    outage: Outage | None = None
    latency: Latency | None = None
    error_rate: ErrorRate | None = None
    injected: ChaosCounters = field(default_factory=ChaosCounters)

    def clear(self) -> None:
        self.outage = None
        self.latency = None
        self.error_rate = None

    def to_json(self) -> dict[str, object]:
        return {
            "outage": None if self.outage is None else self.outage.model_dump(),
            "latency": None if self.latency is None else self.latency.model_dump(),
            "error_rate": None if self.error_rate is None else self.error_rate.model_dump(),
            "injected": {"outage": self.injected.outage, "latency": self.injected.latency,
                         "error_rate": self.injected.error_rate},
        }


class ChaosMiddleware:
    """Applies `state`'s faults to every HTTP request outside `exempt_prefixes`."""

    def __init__(self, app: ASGIApp, state: ChaosState, clock: Clock, rng: random.Random,
                 exempt_prefixes: Sequence[str] = ("/admin",)) -> None:
        self.app = app
        self.state = state
        self.clock = clock
        self.rng = rng
        self.exempt_prefixes = tuple(prefix.rstrip("/") for prefix in exempt_prefixes)

    def is_exempt(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = self.state
        outage = state.outage
        if outage is not None:
            state.injected.outage += 1
            if outage.mode == "drop":
                raise ConnectionDropped(f"chaos outage: dropped {scope['method']} {scope['path']}")
            text = f"{status_phrase(outage.status)} (simulated outage)"
            response = fhir_response(operation_outcome("transient", text), outage.status)
            await response(scope, receive, send)
            return
        latency = state.latency
        if latency is not None:
            state.injected.latency += 1
            await self.clock.sleep(self.rng.uniform(latency.min_ms, latency.max_ms) / 1000.0)
        error_rate = state.error_rate  # read after the sleep: the fault may have changed meanwhile
        if error_rate is not None and self.rng.random() < error_rate.probability:
            state.injected.error_rate += 1
            text = f"{status_phrase(error_rate.status)} (simulated error)"
            outcome = operation_outcome(issue_code_for_status(error_rate.status), text)
            await fhir_response(outcome, error_rate.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def admin_auth(admin_token: str) -> params.Depends:
    """A FastAPI dependency that lets only `Authorization: Bearer <admin_token>` through (401 OO)."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    expected = admin_token.encode("utf-8")

    async def require_admin(request: Request) -> None:
        given = _bearer(request)
        if given is None or not hmac.compare_digest(given.encode("utf-8"), expected):
            outcome = operation_outcome("login", "Unauthorized", outcome_id="unauthorized")
            raise OutcomeError(401, outcome, {"WWW-Authenticate": 'Bearer realm="admin"'})

    return params.Depends(require_admin)


def chaos_admin_router(state: ChaosState, admin_token: str) -> APIRouter:
    """The `/admin/chaos` API over `state`, protected by `admin_token` (compared in constant time)."""
    router = APIRouter(prefix="/admin/chaos", route_class=OutcomeRoute, dependencies=[admin_auth(admin_token)])

    def answer() -> JSONResponse:
        return JSONResponse(state.to_json())

    @router.get("")
    async def get_chaos() -> JSONResponse:
        return answer()

    @router.delete("")
    async def clear_chaos() -> JSONResponse:
        state.clear()
        logger.info("chaos: all faults cleared")
        return answer()

    @router.put("/outage")
    async def put_outage(body: Outage) -> JSONResponse:
        state.outage = body
        logger.info("chaos: outage on (mode=%s status=%d)", body.mode, body.status)
        return answer()

    @router.delete("/outage")
    async def delete_outage() -> JSONResponse:
        state.outage = None
        logger.info("chaos: outage off")
        return answer()

    @router.put("/latency")
    async def put_latency(body: Latency) -> JSONResponse:
        state.latency = body
        logger.info("chaos: latency on (%d..%d ms)", body.min_ms, body.max_ms)
        return answer()

    @router.delete("/latency")
    async def delete_latency() -> JSONResponse:
        state.latency = None
        logger.info("chaos: latency off")
        return answer()

    @router.put("/error-rate")
    async def put_error_rate(body: ErrorRate) -> JSONResponse:
        state.error_rate = body
        logger.info("chaos: error rate on (p=%g status=%d)", body.probability, body.status)
        return answer()

    @router.delete("/error-rate")
    async def delete_error_rate() -> JSONResponse:
        state.error_rate = None
        logger.info("chaos: error rate off")
        return answer()

    return router
