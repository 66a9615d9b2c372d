"""The bearer-token `Authorizer` the Epic, Cerner and Allscripts simulators hand to the FHIR core.

One call, in this order (each vendor supplies only its error shapes and an optional extra check):

1. `Authorization: Bearer <token>` known to the shared `TokenStore` and not expired, else 401
   (`errors.unauthorized`, told whether the token was missing, unknown or expired);
2. `admit(request, grant)`, the vendor's extra rule (Cerner: the token's tenant is the URL's);
3. `request.state.ehrlab_client = client_id` (the admin request journal reads it);
4. the per-client rate limit (`WindowRateLimiter.hit(client_id)`), refused as `errors.throttled`:
   every authenticated call counts, whether or not its scopes then allow it;
5. `scope_allows(grant.scopes, resource_type, letter)` with the SMART letter of the interaction
   (`simulators.fhir.interaction.SMART_LETTERS`), else 403 (`errors.forbidden`).

`client_of(scope)` answers the chaos layer's "which client is this?" before the app runs (issue 3's
`client_resolver`), from the same header, without consuming rate-limit points; like the admin
package's default resolver it names the client of an expired token too.

Shared by three vendors but kept in `simulators/epic/` because the VENDORS engineer owns only the
vendor packages; a shared home (`simulators/admin/` or `simulators/fhir/`) would suit it better.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

from simulators.admin.clients import CONTEXTS, scope_allows
from simulators.admin.ratelimit import RateDecision, WindowRateLimiter
from simulators.admin.tokens import Grant, TokenStore
from simulators.fhir.interaction import SMART_LETTERS, Interaction
from simulators.fhir.outcome import OutcomeError

TokenProblem = Literal["missing", "invalid", "expired"]


@dataclass(frozen=True, slots=True)
class BearerErrors:
    """A vendor's answers to the three refusals, as `OutcomeError`s to raise."""

    unauthorized: Callable[[TokenProblem], OutcomeError]
    forbidden: Callable[[str, Interaction], OutcomeError]
    throttled: Callable[[RateDecision], OutcomeError]


def bearer_token(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


class BearerAuthorizer:
    """`Authorizer` for `simulators.fhir.api.fhir_router`; see the module docstring."""

    def __init__(self, tokens: TokenStore, errors: BearerErrors, *, limiter: WindowRateLimiter | None = None,
                 admit: Callable[[Request, Grant], None] | None = None,
                 contexts: Collection[str] = CONTEXTS, marker_scopes: Collection[str] = ()) -> None:
        self.tokens = tokens
        self.errors = errors
        self.limiter = limiter
        self._admit = admit
        self._contexts = tuple(contexts)
        self._markers = frozenset(marker_scopes)  # scopes that make a token unusable here (Unity sessions)

    def __repr__(self) -> str:
        return f"BearerAuthorizer(limiter={self.limiter!r})"

    def grant(self, headers: Headers) -> Grant | TokenProblem:
        token = bearer_token(headers)
        if token is None:
            return "missing"
        grant = self.tokens.check(token)
        if grant is None:
            return "expired" if self.tokens.inspect(token) is not None else "invalid"
        if self._markers & set(grant.scopes):
            return "invalid"
        return grant

    async def __call__(self, request: Request, resource_type: str, interaction: Interaction) -> str:
        grant = self.grant(request.headers)
        if isinstance(grant, str):
            raise self.errors.unauthorized(grant)
        if self._admit is not None:
            self._admit(request, grant)
        request.state.ehrlab_client = grant.client_id
        if self.limiter is not None:
            decision = self.limiter.hit(grant.client_id)
            if not decision.allowed:
                raise self.errors.throttled(decision)
        if not scope_allows(grant.scopes, resource_type, SMART_LETTERS[interaction], contexts=self._contexts):
            raise self.errors.forbidden(resource_type, interaction)
        return grant.client_id

    def client_of(self, scope: Scope) -> str | None:
        """The client a request's bearer token belongs to (chaos scoping), or None."""
        if scope.get("type") != "http":
            return None
        token = bearer_token(Headers(scope=scope))
        grant = None if token is None else self.tokens.inspect(token)  # an expired token still names its client
        return None if grant is None else grant.client_id
