"""Medplum's OAuth token endpoint (client credentials) and the checks on every /fhir/R4 call.

Token endpoint, reproducing packages/server/src/oauth/token.ts (reference/vendors.md §3, read at
medplum/medplum commit 0489d58a):
- only `application/x-www-form-urlencoded`, else `400 'Unsupported content type'` as a text body
  (Express `res.send(string)`, hence `text/html`);
- credentials from HTTP Basic when an `Authorization` header is present (a non-Basic header is
  "Invalid authorization header"), else `client_id`/`client_secret` in the form. Like Medplum, the
  Basic value is split on `:` with no URL-decoding, so a secret containing `:` is cut there;
- errors are `400 {"error": "invalid_request", "error_description": ...}`: "Missing grant_type",
  "Missing client_id", "Missing client_secret", "Invalid client", "Invalid secret";
- any grant type other than client_credentials: `invalid_request` "Unsupported grant_type" (what
  token.ts sends; RFC 6749 §5.2 would say `unsupported_grant_type`);
- private_key_jwt client assertions are not implemented: "Invalid client assertion".
Clients and secrets live in the shared `ClientRegistry` (rotation: every active secret works until the
admin API revokes it); tokens in the shared `TokenStore` (forced expiry from the admin API).

Scopes: the response echoes the requested `scope` (default `openid`). A request naming no SMART resource
scope gets the client's registered scopes (Medplum: the client's access policy, by default the whole
project); one naming resource scopes gets those the client may have (`narrow_scopes`), possibly none.

Every FHIR call (`FhirGate`, before routing, as Medplum's auth middleware): a known, unexpired Bearer
token or `401 unauthorized` with `WWW-Authenticate: Bearer error="invalid_token"`; then, per interaction
(`medplum_authorizer`): the token's scopes must allow it (`403 forbidden`), then the FHIR quota is
charged (`429`). `/fhir/R4/metadata` and `/fhir/R4/.well-known/*` are public. Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.admin.clients import ClientRegistry, narrow_scopes, parse_scope, scope_allows
from simulators.admin.tokens import Grant, TokenStore
from simulators.fhir.interaction import SMART_LETTERS, Authorizer, Interaction
from simulators.fhir.outcome import OutcomeError, dump_json
from simulators.medplum.limits import FhirQuota
from simulators.medplum.outcomes import forbidden, unauthorized

FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
UNSUPPORTED_GRANT_ERROR = "invalid_request"
#: Medplum's answer to a missing/unknown/expired token on the FHIR API.
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'
FHIR_BASE = "/fhir/R4"
#: Scope decisions remembered per (scopes, type, letter) before the memo starts over.
MAX_SCOPE_DECISIONS = 4096
_PUBLIC_PATHS = frozenset({f"{FHIR_BASE}/metadata", f"{FHIR_BASE}/.well-known/smart-configuration"})


def _token_error(description: str, error: str = "invalid_request") -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _basic_credentials(header: str) -> tuple[str, str] | str:
    """(client_id, secret) from a Basic header, or an error description."""
    if not header.startswith("Basic "):
        return "Invalid authorization header"
    try:
        decoded = base64.b64decode(header[len("Basic "):].strip(), validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return "Invalid client"
    parts = decoded.split(":")
    return parts[0], parts[1] if len(parts) > 1 else ""


def granted_scopes(requested: str, allowed: list[str]) -> list[str]:
    """The resource scopes a token carries (see the module docstring)."""
    asked = requested.split()
    if not any(parse_scope(scope) is not None for scope in asked):
        return list(allowed)
    return narrow_scopes(asked, allowed)


def oauth_router(registry: ClientRegistry, tokens: TokenStore, project_id: str) -> APIRouter:
    """`POST /oauth2/token` against `registry` (read at each request: rotatable)."""
    router = APIRouter()

    @router.post("/oauth2/token", responses={"default": {"description": "An OAuth 2.0 error, or text", "content": {
        "application/json": {"schema": {"type": "object", "required": ["error"]}},
        "text/html": {"schema": {"type": "string"}}}}}, openapi_extra={"requestBody": {"content": {
            FORM: {"schema": {"type": "object", "properties": {
                "grant_type": {"enum": ["client_credentials"]}, "client_id": {"type": "string"},
                "client_secret": {"type": "string"}, "scope": {"type": "string"}}}}}}})
    async def token(request: Request) -> Response:
        if _media_type(request.headers.get("content-type")) != FORM:
            return Response("Unsupported content type", status_code=400, media_type="text/html")
        form = dict(reversed(parse_qsl((await request.body()).decode("utf-8", "replace"),
                                       keep_blank_values=True)))  # first value of a repeated key wins
        grant_type = form.get("grant_type")
        if not grant_type:
            return _token_error("Missing grant_type")
        if grant_type != CLIENT_CREDENTIALS:
            return _token_error("Unsupported grant_type", UNSUPPORTED_GRANT_ERROR)
        if "client_assertion_type" in form:
            if form["client_assertion_type"] != JWT_BEARER:
                return _token_error("Unsupported client assertion type")
            return _token_error("Invalid client assertion")
        authorization = request.headers.get("authorization")
        if authorization is not None:
            basic = _basic_credentials(authorization)
            if isinstance(basic, str):
                return _token_error(basic)
            client_id, secret = basic
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id:
            return _token_error("Missing client_id")
        if not secret:
            return _token_error("Missing client_secret")
        known = registry.get(client_id) is not None
        if not registry.verify_secret(client_id, secret) or not known:  # constant time either way
            return _token_error("Invalid secret" if known else "Invalid client")
        request.state.ehrlab_client = client_id
        scope = form.get("scope") or "openid"
        issued = tokens.issue(client_id, granted_scopes(scope, registry.scopes(client_id)))
        return JSONResponse({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": scope,
            "access_token": issued.value,
            "project": {"reference": f"Project/{project_id}"},
            "profile": {"reference": f"ClientApplication/{client_id}"},
        })

    return router


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if kind.lower() == "bearer" else None
    return None


class FhirGate:
    """Pure ASGI middleware: every /fhir/R4 request but the public ones needs a valid Bearer token."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens
        self._refusal = dump_json(unauthorized())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == FHIR_BASE or path.startswith(FHIR_BASE + "/")) \
                and path not in _PUBLIC_PATHS:
            token = _bearer(scope)
            grant = self.tokens.check(token) if token else None
            if grant is None:
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/fhir+json; charset=utf-8"),
                    (b"content-length", str(len(self._refusal)).encode()),
                    (b"www-authenticate", INVALID_TOKEN_CHALLENGE.encode())]})
                await send({"type": "http.response.body", "body": self._refusal})
                return
            scope.setdefault("state", {})["medplum_grant"] = grant
            scope["state"]["ehrlab_client"] = grant.client_id
        await self.app(scope, receive, send)


def medplum_authorizer(tokens: TokenStore, quota: FhirQuota,
                       before_audit_read: Callable[[], object] | None = None) -> Authorizer:
    """Scopes, then the FHIR quota, for one interaction (the gate has checked the token).

    `before_audit_read` runs before any interaction that may see AuditEvents (on AuditEvent, system-level,
    or an operation): Medplum's buffered audit trail flushes there (`simulators.medplum.audit`).
    """

    decisions: dict[tuple[tuple[str, ...], str, str], bool] = {}

    async def authorize(request: Request, resource_type: str, interaction: Interaction) -> str:
        if before_audit_read is not None and (resource_type in ("AuditEvent", "*")
                                              or interaction is Interaction.OPERATION):
            before_audit_read()
        state = request.scope.get("state")  # the ASGI state dict itself: `request.state` wraps it per call
        if state is None:
            state = request.scope["state"] = {}
        grant = state.get("medplum_grant")
        if not isinstance(grant, Grant):  # not behind the gate (tests mounting the router alone)
            token = _bearer(request.scope)
            grant = tokens.check(token) if token else None
            if grant is None:
                raise OutcomeError(401, unauthorized(), {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE})
        state["ehrlab_client"] = grant.client_id
        key = (grant.scopes, resource_type, SMART_LETTERS[interaction])
        allowed = decisions.get(key)
        if allowed is None:  # parsing the scopes on every call cost more than the rest of the check
            if len(decisions) >= MAX_SCOPE_DECISIONS:
                decisions.clear()
            allowed = decisions[key] = scope_allows(*key)
        if not allowed:
            raise OutcomeError(403, forbidden())
        quota.consume(state, grant.client_id, interaction)
        return grant.client_id

    return authorize
