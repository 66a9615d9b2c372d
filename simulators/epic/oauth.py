"""Epic's SMART Backend Services token endpoint (`POST <prefix>/oauth2/token`; vendors.md §1, §5).

- `application/x-www-form-urlencoded` only, else `invalid_request`;
- `grant_type=client_credentials`, else `unsupported_grant_type` (`invalid_request` when missing);
- `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a
  `client_assertion` checked by `AssertionVerifier` (alg, kid, typ, iss = sub = a registered client,
  aud = this token URL, exp present and at most 5 minutes ahead, jti not replayed, key from the
  client's static JWKS or JWKS URL); a `client_id` in the form, if any, must be the assertion's;
- `scope` optional (Epic grants the app's configured scopes); when given, the requested scopes that
  the client's registered scopes cover are granted (SMART: the granted scope "may differ from the
  request"), and a request of which none is covered is refused;
- success: `{"access_token", "token_type": "Bearer", "expires_in": <token_lifetime_s>, "scope"}`, no
  refresh token (SMART: SHOULD NOT);
- every failure is HTTP 400 `{"error": "invalid_client", "error_description": ...}` except the two
  request-shape errors above (RFC 6749 §5.2; vendors.md §5: authentication failures and scopes
  outside pre-authorization are `invalid_client`). `error_description` is `null` unless
  `error_descriptions` is on: Epic's sandbox answered `"error_description": null` (client-js#87).
  A description never quotes the assertion.

The aud check accepts the URL the assertion was posted to, rebuilt from the request (scheme, Host
header, path; no query), so a client coming through a proxy on another port is still checked against
the URL it used, plus any `audiences` configured. `read_form` is shared with the Cerner and
Allscripts token endpoints.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.admin.clients import ClientRegistry, narrow_scopes
from simulators.admin.tokens import TokenStore
from simulators.epic.assertion import AssertionVerifier, InvalidClientAssertion

FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Largest token request body read (a form with a JWT is a few KiB).
MAX_FORM_BYTES = 32 * 1024


async def read_form(request: Request) -> dict[str, str] | None:
    """The form fields of a urlencoded body (first value of a repeated key wins), or None when the
    body is not `application/x-www-form-urlencoded` or is too large."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM:
        return None
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return None
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def request_url(request: Request) -> str:
    """The URL the client posted to: scheme, Host, path (no query string)."""
    return str(request.url.replace(query=None, fragment=None))


class EpicTokenEndpoint:
    """The token endpoint; `router()` mounts it at `path`."""

    def __init__(self, *, path: str, verifier: AssertionVerifier, registry: ClientRegistry, tokens: TokenStore,
                 lifetime_s: int, audiences: Collection[str] = (), error_descriptions: bool = False) -> None:
        self.path = path
        self.verifier = verifier
        self.registry = registry
        self.tokens = tokens
        self.lifetime_s = lifetime_s
        self.audiences = tuple(audiences)
        self.error_descriptions = error_descriptions

    def __repr__(self) -> str:
        return f"EpicTokenEndpoint(path={self.path!r}, lifetime_s={self.lifetime_s})"

    def _error(self, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description if self.error_descriptions else None},
                            status_code=400, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def token(self, request: Request) -> JSONResponse:
        form = await read_form(request)
        if form is None:
            return self._error("invalid_request", "the body must be application/x-www-form-urlencoded")
        grant_type = form.get("grant_type")
        if not grant_type:
            return self._error("invalid_request", "grant_type is required")
        if grant_type != CLIENT_CREDENTIALS:
            return self._error("unsupported_grant_type", "only client_credentials is supported here")
        if form.get("client_assertion_type") != JWT_BEARER:
            return self._error("invalid_client", f"client_assertion_type must be {JWT_BEARER}")
        assertion = form.get("client_assertion", "")
        if not assertion:
            return self._error("invalid_client", "client_assertion is required")
        try:
            client_id = await self.verifier.verify(assertion, (request_url(request), *self.audiences))
        except InvalidClientAssertion as exc:
            return self._error("invalid_client", exc.reason)
        if form.get("client_id", client_id) != client_id:
            return self._error("invalid_client", "client_id does not match the assertion's iss")
        allowed = self.registry.scopes(client_id)
        requested = form.get("scope", "").split()
        granted = narrow_scopes(requested, allowed) if requested else allowed
        if not granted:
            return self._error("invalid_client", "none of the requested scopes is authorized for this client")
        issued = self.tokens.issue(client_id, granted, lifetime_s=self.lifetime_s)
        request.state.ehrlab_client = client_id
        return JSONResponse({"access_token": issued.value, "token_type": "Bearer", "expires_in": issued.expires_in,
                             "scope": " ".join(granted)},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def router(self) -> APIRouter:
        router = APIRouter(tags=["OAuth 2.0"])
        router.add_api_route(self.path, self.token, methods=["POST"], response_class=JSONResponse,
                             summary="SMART Backend Services token (client_credentials + private_key_jwt)")
        return router
