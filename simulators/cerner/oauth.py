"""Cerner's system-account token endpoint (vendors.md §2, content/authorization.md).

`POST /tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token`:
- `Authorization: Basic base64(client_id:secret)` (RFC 6749 §2.3.1: both form-urlencoded before
  encoding), `Content-Type: application/x-www-form-urlencoded`,
  `grant_type=client_credentials&scope=system/Observation.read system/Patient.read` (space-separated
  SMART v1 `system/` scopes);
- success: `{"access_token", "scope", "token_type": "Bearer", "expires_in": 570}`;
- errors carry `error_uri`, not `error_description`:
  `{"error": "invalid_grant", "error_uri": "https://authorization.cerner.com/errors/urn%3Acerner%3Aerror%3A...
  /instances/<uuid>?client=<id>&tenant=<tenant>"}`, the instance id drawn from the rng.

Which error when (Cerner documents only the shape; where it is silent, RFC 6749 §5.2):
| case                                                   | status | error                  |
|--------------------------------------------------------|--------|------------------------|
| not form-encoded, or no grant_type                     | 400    | invalid_request        |
| no/invalid Basic credentials, client of another tenant | 401    | invalid_client (+ `WWW-Authenticate: Basic`) |
| unknown tenant                                         | 400    | invalid_request        |
| grant_type other than client_credentials               | 400    | unsupported_grant_type |
| a scope that is not a `system/` resource scope (e.g. comma-separated, the forum thread in §2) | 400 | invalid_grant |
| well-formed scopes none of which the account may have  | 400    | invalid_scope          |
A missing `scope` grants the account's configured scopes.
"""

from __future__ import annotations

import base64
import binascii
import random
from urllib.parse import quote, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.admin.clients import ClientRegistry, narrow_scopes, parse_scope
from simulators.admin.tokens import TokenStore
from simulators.epic.oauth import CLIENT_CREDENTIALS, read_form
from simulators.fhir.store import rng_uuid

TOKEN_PATH = "/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from an HTTP Basic header, RFC 6749 §2.3.1 decoding; None if absent or bad."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


class CernerTokenEndpoint:
    """The token endpoint of every tenant the simulator serves."""

    def __init__(self, *, tenants: tuple[str, ...], registry: ClientRegistry, tokens: TokenStore, lifetime_s: int,
                 rng: random.Random, error_uri_base: str) -> None:
        self.tenants = frozenset(tenants)
        self.registry = registry
        self.tokens = tokens
        self.lifetime_s = lifetime_s
        self.error_uri_base = error_uri_base.rstrip("/")
        self._rng = rng

    def __repr__(self) -> str:
        return f"CernerTokenEndpoint(tenants={sorted(self.tenants)!r}, lifetime_s={self.lifetime_s})"

    def _error(self, error: str, tenant: str, client_id: str | None, status: int = 400) -> JSONResponse:
        urn = quote(f"urn:cerner:error:authorization-server:oauth2:token:{error}", safe="")
        query = f"client={quote(client_id or '', safe='')}&tenant={quote(tenant, safe='')}"
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="authorization.cerner.com"'
        return JSONResponse({"error": error,
                             "error_uri": f"{self.error_uri_base}/{urn}/instances/{rng_uuid(self._rng)}?{query}"},
                            status_code=status, headers=headers)

    async def token(self, tenant: str, request: Request) -> JSONResponse:
        form = await read_form(request)
        if form is None or not form.get("grant_type"):
            return self._error("invalid_request", tenant, None)
        if tenant not in self.tenants:
            return self._error("invalid_request", tenant, None)
        credentials = basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            return self._error("invalid_client", tenant, None, 401)
        client_id, secret = credentials
        info = self.registry.get(client_id)
        if not self.registry.verify_secret(client_id, secret) or info is None or info.tenant != tenant:
            return self._error("invalid_client", tenant, client_id, 401)
        if form["grant_type"] != CLIENT_CREDENTIALS:
            return self._error("unsupported_grant_type", tenant, client_id)
        requested = form.get("scope", "").split()
        if any(parse_scope(s) is None or not s.startswith("system/") for s in requested):
            return self._error("invalid_grant", tenant, client_id)
        allowed = list(info.scopes)
        granted = narrow_scopes(requested, allowed) if requested else allowed
        if not granted:
            return self._error("invalid_scope", tenant, client_id)
        issued = self.tokens.issue(client_id, granted, lifetime_s=self.lifetime_s)
        request.state.ehrlab_client = client_id
        return JSONResponse({"access_token": issued.value, "scope": " ".join(granted), "token_type": "Bearer",
                             "expires_in": issued.expires_in},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def router(self) -> APIRouter:
        router = APIRouter(tags=["OAuth 2.0"])
        router.add_api_route(TOKEN_PATH, self.token, methods=["POST"], response_class=JSONResponse,
                             summary="System account token (client_credentials, HTTP Basic)")
        return router
