"""Medplum's rate limits: requests per IP per minute, and the weighted FHIR interaction quota.

Reproduces packages/server/src/ratelimit.ts and fhirquota.ts (reference/vendors.md §3, "Rate limits";
read at medplum/medplum 069a5683 and 04d2d740):
- every request except `/admin` hits a per-IP limiter (`requests`, key `<ip>`, or `<ip>:auth` with the
  auth limit for `/oauth2/*` and `/auth/*`); refused requests answer 429 with the `tooManyRequests`
  OperationOutcome as `application/json`, whose `diagnostics` is the JSON of rate-limiter-flexible's
  `RateLimiterRes` plus `limit`;
- each FHIR interaction costs points (read 1, search 20, history 10, create/update/patch/delete 100;
  operations count as a search) against the caller's per-minute quota and then the project's (10x);
  over either, 429 `too-many-requests` (FHIR JSON). Medplum sets **no Retry-After**, and neither do we;
- every answer carries one `RateLimit` header line per limiter, in Medplum's exact format,
  `"requests";r=<remaining>;t=<ceil(seconds to reset)>` then `"fhirInteractions";r=<remaining>;t=<s>`
  (the smaller of the user's and the project's remaining points). @medplum/core's client throws
  "Could not parse RateLimit header" unless each comma-separated item has exactly three `;` parts.

The limiters are the ADMIN engineer's `WindowRateLimiter`s (fixed windows on the injected clock, the
semantics of rate-limiter-flexible), so `/admin/rate-limits` tunes them at run time.
"""

from __future__ import annotations

import json
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.admin.ratelimit import RateDecision, WindowRateLimiter
from simulators.fhir.interaction import Interaction
from simulators.fhir.outcome import OutcomeError, dump_json
from simulators.medplum.outcomes import too_many_requests

#: Points per FHIR interaction (fhirquota.ts: recordRead 1, recordHistory 10, recordSearch 20, recordWrite 100).
QUOTA_COST: dict[Interaction, int] = {
    Interaction.READ: 1, Interaction.VREAD: 1, Interaction.HISTORY: 10, Interaction.SEARCH: 20,
    Interaction.OPERATION: 20, Interaction.CREATE: 100, Interaction.UPDATE: 100, Interaction.PATCH: 100,
    Interaction.DELETE: 100,
}
#: Where the FHIR quota decision of a request waits for the header middleware.
STATE_KEY = "medplum_fhir_quota"
MINUTE = 60.0


def header_value(name: str, decision: RateDecision) -> str:
    """One RateLimit item: `"<name>";r=<remaining>;t=<seconds to reset, rounded up>`."""
    return f'"{name}";r={decision.remaining};t={math.ceil(decision.reset_s)}'


def diagnostics(decision: RateDecision) -> str:
    """JSON of rate-limiter-flexible's RateLimiterRes plus `limit`, as Medplum puts in `diagnostics`."""
    return json.dumps({"remainingPoints": decision.remaining, "msBeforeNext": round(decision.reset_s * 1000),
                       "consumedPoints": decision.consumed, "isFirstInDuration": False,
                       "limit": decision.limit}, separators=(",", ":"))


class FhirQuota:
    """The per-user and per-project FHIR interaction quotas of one project."""

    def __init__(self, user: WindowRateLimiter, project: WindowRateLimiter, project_id: str) -> None:
        self.user = user
        self.project = project
        self.project_id = project_id

    def consume(self, state: dict[str, object], client_id: str, interaction: Interaction) -> None:
        """Charge the interaction; raise 429 over quota. The decision is kept for the RateLimit header, in
        `state` (the request's ASGI state dict)."""
        cost = QUOTA_COST[interaction]
        decision = self.user.hit(client_id, cost)
        if decision.allowed:
            project = self.project.hit(self.project_id, cost)
            if project.remaining < decision.remaining or not project.allowed:
                decision = project
        state[STATE_KEY] = decision  # read by RequestRateLimit
        if not decision.allowed:
            raise OutcomeError(429, too_many_requests(diagnostics(decision)))


def _is_auth(path: str) -> bool:
    return path != "/auth/me" and (path.startswith("/auth/") or path.startswith("/oauth2/"))


class RequestRateLimit:
    """Pure ASGI middleware: the per-IP request limit and the RateLimit header on every answer."""

    def __init__(self, app: ASGIApp, *, requests: WindowRateLimiter, auth: WindowRateLimiter,
                 exempt_prefix: str = "/admin") -> None:
        self.app = app
        self.requests = requests
        self.auth = auth
        self.exempt_prefix = exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == self.exempt_prefix or path.startswith(self.exempt_prefix + "/"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        auth = _is_auth(path)
        limiter = self.auth if auth else self.requests
        decision = limiter.hit(f"{client[0]}:auth" if auth else str(client[0]))
        requests_header = (b"ratelimit", header_value("requests", decision).encode())
        if not decision.allowed:
            body = dump_json(too_many_requests(diagnostics(decision)))
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                requests_header]})
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), requests_header]
                quota = state.get(STATE_KEY)
                if isinstance(quota, RateDecision):
                    headers.append((b"ratelimit", header_value("fhirInteractions", quota).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
