"""Medplum's OAuth token endpoint (client credentials) and the Bearer check on /fhir/R4.

Reproduces packages/server/src/oauth/token.ts (reference/vendors.md §3, read at medplum/medplum
commit 0489d58a):
- only `application/x-www-form-urlencoded`, else `400 'Unsupported content type'` as a text body
  (Express `res.send(string)`, hence `text/html`);
- credentials from HTTP Basic when an `Authorization` header is present (a non-Basic header is
  "Invalid authorization header"), else `client_id`/`client_secret` in the form. Like Medplum, the
  Basic value is split on `:` with no URL-decoding, so a secret containing `:` is cut there;
- errors are `400 {"error": "invalid_request", "error_description": ...}`: "Missing grant_type",
  "Missing client_id", "Missing client_secret", "Invalid client", "Invalid secret";
- any grant type other than client_credentials: `invalid_request` "Unsupported grant_type". That is
  what token.ts sends (RFC 6749 §5.2 would say `unsupported_grant_type`);
- private_key_jwt client assertions are not implemented: "Invalid client assertion".

Access tokens are opaque hex strings drawn from the simulator's rng (real Medplum issues JWTs) and
expire `token_lifetime_s` after issue on the injected clock's monotonic time. Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, params
from fastapi.responses import JSONResponse, Response

from integrations.clock import Clock
from simulators.fhir.outcome import OutcomeError
from simulators.medplum.outcomes import unauthorized

FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
UNSUPPORTED_GRANT_ERROR = "invalid_request"
#: Medplum's answer to a missing/unknown/expired token on the FHIR API.
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


@dataclass(frozen=True, slots=True)
class AccessToken:
    client_id: str
    scope: str
    expires_at: float  # on the clock's monotonic time base


class TokenStore:
    """Issued access tokens; a token is valid until `expires_at`, exclusive."""

    def __init__(self, clock: Clock, rng: random.Random, lifetime_s: int) -> None:
        self._clock = clock
        self._rng = rng
        self.lifetime_s = lifetime_s
        self._tokens: dict[str, AccessToken] = {}

    def __repr__(self) -> str:
        return f"TokenStore(lifetime_s={self.lifetime_s}, issued={len(self._tokens)})"

    def issue(self, client_id: str, scope: str) -> str:
        now = self._clock.monotonic()
        self._tokens = {token: info for token, info in self._tokens.items() if info.expires_at > now}
        token = f"{self._rng.getrandbits(256):064x}"
        self._tokens[token] = AccessToken(client_id=client_id, scope=scope, expires_at=now + self.lifetime_s)
        return token

    def check(self, token: str) -> AccessToken | None:
        """The token's grant if it is known and not expired, else None."""
        info = self._tokens.get(token)
        if info is None or self._clock.monotonic() >= info.expires_at:
            return None
        return info

    def revoke(self, client_id: str | None = None) -> int:
        """Forget every token (of `client_id` if given); returns how many were revoked."""
        keep = {} if client_id is None else {t: i for t, i in self._tokens.items() if i.client_id != client_id}
        revoked = len(self._tokens) - len(keep)
        self._tokens = keep
        return revoked


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


def oauth_router(clients: Mapping[str, str], tokens: TokenStore, project_id: str) -> APIRouter:
    """`POST /oauth2/token`; `clients` maps client_id to secret (read at each request: rotatable)."""
    router = APIRouter()

    @router.post("/oauth2/token")
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
        expected = clients.get(client_id)
        if expected is None:
            return _token_error("Invalid client")
        if not hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8")):
            return _token_error("Invalid secret")
        scope = form.get("scope") or "openid"
        access_token = tokens.issue(client_id, scope)
        return JSONResponse({
            "token_type": "Bearer",
            "expires_in": tokens.lifetime_s,
            "scope": scope,
            "access_token": access_token,
            "project": {"reference": f"Project/{project_id}"},
            "profile": {"reference": f"ClientApplication/{client_id}"},
        })

    return router


def bearer_auth(tokens: TokenStore) -> params.Depends:
    """Dependency for /fhir/R4: a known, unexpired Bearer token, else 401 `unauthorized` (code login)."""

    async def require_token(request: Request) -> AccessToken:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        info = tokens.check(credentials.strip()) if scheme.lower() == "bearer" else None
        if info is None:
            raise OutcomeError(401, unauthorized(), {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE})
        return info

    return params.Depends(require_token)
