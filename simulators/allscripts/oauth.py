"""The token endpoint of Allscripts' FHIR API (vendors.md §4): `POST /authorization/connect/token`.

An IdentityServer-style endpoint (the `connect/token` path): form-encoded, `client_id` and
`client_secret` in the form (vendors.md §4: "client_secret in the form"), `grant_type=client_credentials`.
Success: `{"access_token", "expires_in": 1200, "token_type": "Bearer", "scope"}`. Errors: HTTP 400
`{"error": "invalid_request" | "invalid_client" | "unsupported_grant_type" | "invalid_scope"}`,
RFC 6749 §5.2 codes without a description, as IdentityServer answers. Scopes: the requested ones the
client's registered scopes cover, or all of those when none is requested.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.admin.clients import ClientRegistry, narrow_scopes
from simulators.admin.tokens import TokenStore
from simulators.epic.oauth import CLIENT_CREDENTIALS, read_form


def _error(error: str) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=400, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class AllscriptsTokenEndpoint:
    def __init__(self, *, path: str, registry: ClientRegistry, tokens: TokenStore, lifetime_s: int) -> None:
        self.path = path
        self.registry = registry
        self.tokens = tokens
        self.lifetime_s = lifetime_s

    def __repr__(self) -> str:
        return f"AllscriptsTokenEndpoint(path={self.path!r}, lifetime_s={self.lifetime_s})"

    async def token(self, request: Request) -> JSONResponse:
        form = await read_form(request)
        if form is None or not form.get("grant_type"):
            return _error("invalid_request")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not secret or not self.registry.verify_secret(client_id, secret):
            return _error("invalid_client")
        if form["grant_type"] != CLIENT_CREDENTIALS:
            return _error("unsupported_grant_type")
        allowed = self.registry.scopes(client_id)
        requested = form.get("scope", "").split()
        granted = narrow_scopes(requested, allowed) if requested else allowed
        if not granted:
            return _error("invalid_scope")
        issued = self.tokens.issue(client_id, granted, lifetime_s=self.lifetime_s)
        request.state.ehrlab_client = client_id
        return JSONResponse({"access_token": issued.value, "expires_in": issued.expires_in, "token_type": "Bearer",
                             "scope": " ".join(granted)},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def router(self) -> APIRouter:
        router = APIRouter(tags=["OAuth 2.0"])
        router.add_api_route(self.path, self.token, methods=["POST"], response_class=JSONResponse,
                             summary="client_credentials token, client_secret in the form")
        return router
