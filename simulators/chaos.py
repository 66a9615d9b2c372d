"""Fault injection for every simulator: a pure ASGI middleware applying the faults of a `ChaosState`.

`ChaosMiddleware` wraps a simulator's FastAPI app (inside the request journal, see
`simulators.admin.assemble`; the shape of Starlette's `TrustedHostMiddleware`) and applies the active
faults (`simulators.admin.faults`) to every HTTP request whose path is not exempt (`/admin` by
default, so the faults can always be switched off). Per request, among the faults whose scope
matches (method, path prefix, client id from `client_resolver(scope)`, asked only while some active
fault is scoped to a client; without a resolver, client-scoped faults match nothing), in this order:

1. outage (the newest matching): `status` mode answers `status` with an OperationOutcome (code
   `transient`); `drop` mode raises `ConnectionDropped`, which the serving layer turns into a
   closed connection with no response (`simulators.transport`, `simulators.server`);
2. fail-next (the oldest matching with calls left): like an outage for one call, counting down;
   the fault is removed when its count is spent;
3. latency: every matching latency fault sleeps a uniform `[min_ms, max_ms]` on the injected clock;
4. error rate: every matching error-rate fault draws once; the first hit answers a status drawn
   from its list (one more draw, only if the list has several), with an OperationOutcome;
5. the app, its response damaged by the oldest matching malformed-body fault and slowed by the
   oldest matching slow-body fault (`simulators.admin.body_faults`).

Determinism: the middleware draws from its own `random.Random` only to decide: one `uniform` per
matching latency fault, one `random()` per matching error-rate fault (plus one `choice` when it
fires with several statuses). Exempt paths and faults that are off or out of scope draw nothing, so
a replay with the same seed and timeline decides the same.

Each fault applied is recorded in the request's ASGI state (`scope["state"]["ehrlab_faults"]`, a
list of `(fault id, kind)`), which the request journal reads. The admin API that manages the faults
is `simulators.admin.chaos_api.chaos_admin_router` (re-exported here with the fault models, so the
first API's imports keep working).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.clock import Clock
from simulators.admin.auth import admin_route_class
from simulators.admin.body_faults import BodyFaultSend
from simulators.admin.chaos_api import chaos_admin_router
from simulators.admin.faults import (
    MAX_LATENCY_MS,
    ActiveFault,
    ChaosCounters,
    ChaosState,
    ErrorRate,
    FailNext,
    Fault,
    FaultScope,
    Latency,
    MalformedBody,
    Outage,
    SlowBody,
)
from simulators.errors import ConnectionDropped, ResponseTruncated
from simulators.fhir.outcome import fhir_response, issue_code_for_status, operation_outcome, status_phrase

__all__ = [
    "MAX_LATENCY_MS", "STATE_FAULTS", "ActiveFault", "ChaosCounters", "ChaosMiddleware", "ChaosState",
    "ClientResolver", "ErrorRate", "FailNext", "Fault", "FaultScope", "Latency", "MalformedBody", "Outage",
    "ResponseTruncated", "SlowBody", "admin_route_class", "chaos_admin_router", "request_state",
]

logger = logging.getLogger(__name__)

#: Who is calling, from the raw ASGI scope (e.g. the client of the request's bearer token), or None.
ClientResolver = Callable[[Scope], "str | None"]
#: Where the middleware records the faults it applied: a list of (fault id, kind).
STATE_FAULTS = "ehrlab_faults"
F = TypeVar("F", Outage, Latency, ErrorRate, FailNext, MalformedBody, SlowBody)


def request_state(scope: Scope) -> dict[str, object]:
    """The request's ASGI state dict (what Starlette's `request.state` reads and writes)."""
    state = scope.get("state")
    if not isinstance(state, dict):
        state = scope["state"] = {}
    return state


def _matching(faults: Sequence[ActiveFault], kind: type[F], method: str, path: str,
              client: str | None) -> list[tuple[ActiveFault, F]]:
    """The active faults of type `kind` whose scope matches, oldest first, with their typed settings."""
    return [(f, f.fault) for f in faults
            if isinstance(f.fault, kind) and (f.scope is None or f.scope.matches(method, path, client))]


class ChaosMiddleware:
    """Applies `state`'s faults to every HTTP request outside `exempt_prefixes`."""

    def __init__(self, app: ASGIApp, state: ChaosState, clock: Clock, rng: random.Random,
                 exempt_prefixes: Sequence[str] = ("/admin",), client_resolver: ClientResolver | None = None) -> None:
        self.app = app
        self.state = state
        self.clock = clock
        self.rng = rng
        self.exempt_prefixes = tuple(prefix.rstrip("/") for prefix in exempt_prefixes)
        self._exempt_paths = frozenset(self.exempt_prefixes)
        self._exempt_children = tuple(prefix + "/" for prefix in self.exempt_prefixes)
        self.client_resolver = client_resolver

    def is_exempt(self, path: str) -> bool:
        return path in self._exempt_paths or path.startswith(self._exempt_children)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.state.faults or scope["type"] != "http" or self.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        client = self._client(scope, self.state.faults)
        applied: list[tuple[str, str]] = []
        request_state(scope)[STATE_FAULTS] = applied

        def record(fault: ActiveFault) -> None:
            fault.injected += 1
            self.state.injected.count(fault.kind)
            applied.append((fault.id, fault.kind))

        outages = _matching(self.state.faults, Outage, method, path, client)
        if outages:
            active, outage = outages[-1]
            record(active)
            await self._fail(outage.mode, outage.status, "simulated outage", scope, receive, send)
            return
        pending = [(f, spec) for f, spec in _matching(self.state.faults, FailNext, method, path, client)
                   if f.remaining]
        if pending:
            active, failing = pending[0]
            active.remaining = (active.remaining or 1) - 1
            if active.remaining == 0:
                self.state.remove(active.id)
            record(active)
            await self._fail(failing.mode, failing.status, "simulated failure", scope, receive, send)
            return
        for active, latency in _matching(self.state.faults, Latency, method, path, client):
            record(active)
            await self.clock.sleep(self.rng.uniform(latency.min_ms, latency.max_ms) / 1000.0)
        # read after the sleeps: the faults may have changed meanwhile
        for active, rate in _matching(self.state.faults, ErrorRate, method, path, client):
            if self.rng.random() < rate.probability:
                choices = rate.choices()
                status = choices[0] if len(choices) == 1 else self.rng.choice(choices)
                record(active)
                await self._fail("status", status, "simulated error", scope, receive, send)
                return
        malformed = _matching(self.state.faults, MalformedBody, method, path, client)[:1]
        slow = _matching(self.state.faults, SlowBody, method, path, client)[:1]
        if not malformed and not slow:
            await self.app(scope, receive, send)
            return
        by_kind = {active.kind: active for active, _ in malformed + slow}

        def on_applied(kind: str) -> None:
            record(by_kind[kind])

        body_send = BodyFaultSend(send, self.clock, on_applied=on_applied,
                                  malformed=malformed[0][1] if malformed else None, slow=slow[0][1] if slow else None)
        await self.app(scope, receive, body_send)

    def _client(self, scope: Scope, faults: Sequence[ActiveFault]) -> str | None:
        if self.client_resolver is None or not any(f.scope is not None and f.scope.client_id for f in faults):
            return None
        return self.client_resolver(scope)

    async def _fail(self, mode: str, status: int, why: str, scope: Scope, receive: Receive, send: Send) -> None:
        if mode == "drop":
            raise ConnectionDropped(f"chaos: dropped {scope['method']} {scope['path']}")
        code = "transient" if why == "simulated outage" else issue_code_for_status(status)
        outcome = operation_outcome(code, f"{status_phrase(status)} ({why})")
        await fhir_response(outcome, status)(scope, receive, send)
