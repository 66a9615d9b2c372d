"""The admin token check every `/admin` route runs first, and its OpenAPI description.

`admin_route_class(admin_token)` is an `OutcomeRoute` whose handler checks `Authorization: Bearer
<admin token>` before FastAPI reads the body or the query, so a caller without the token learns
nothing (not even that its body was malformed): 401 OperationOutcome (code `login`) with
`WWW-Authenticate: Bearer realm="admin"`. The comparison is `hmac.compare_digest` over the UTF-8
bytes. `ADMIN_SECURITY` is the `HTTPBearer` scheme each admin router declares as a dependency so the
OpenAPI schema shows the admin routes as bearer-protected (`auto_error=False`: it never rejects
anything itself; the route class already has).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPBearer
from starlette.responses import Response

from simulators.fhir.outcome import OutcomeError, OutcomeRoute, operation_outcome

ADMIN_SECURITY = Security(HTTPBearer(auto_error=False, scheme_name="adminToken",
                                     description="The simulator's admin token (printed by `ehrlab serve`)."))
ADMIN_REALM = 'Bearer realm="admin"'


def bearer_token(request_headers: Any) -> str | None:
    """The credentials of an `Authorization: Bearer <x>` header, or None."""
    scheme, _, credentials = str(request_headers.get("authorization", "")).partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def unauthorized() -> OutcomeError:
    outcome = operation_outcome("login", "Unauthorized", outcome_id="unauthorized")
    return OutcomeError(401, outcome, {"WWW-Authenticate": ADMIN_REALM})


def token_matches(given: str | None, expected: bytes) -> bool:
    if given is None:
        hmac.compare_digest(expected, expected)  # same work for a missing token
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected)


def admin_route_class(admin_token: str) -> type[OutcomeRoute]:
    """An `OutcomeRoute` subclass that lets only `Authorization: Bearer <admin_token>` through."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    expected = admin_token.encode("utf-8")

    class AdminRoute(OutcomeRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def admin_handler(request: Request) -> Response:
                if not token_matches(bearer_token(request.headers), expected):
                    return unauthorized().response()
                return await handler(request)

            return admin_handler

    return AdminRoute
