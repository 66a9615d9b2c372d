"""Admin routes for who may call a simulator and how often: credentials, tokens, rate limits.

    GET    /admin/clients                                   every client with its credentials (no secrets)
    GET    /admin/clients/{client_id}                       one client
    POST   /admin/clients/{client_id}/secrets               add a secret ({"secret": ...}, or {} to have
                                                            one generated and answered once); 201 {"id"}
    POST   /admin/clients/{client_id}/keys                  add a public JWK ({"jwk": {...}}); 201 {"id"}
    DELETE /admin/clients/{client_id}/credentials/{id}      revoke one credential
    GET    /admin/tokens                                    how many tokens are valid (all, per client)
    POST   /admin/tokens/expire                             force expiry ({"client_id": null} = all)
    POST   /admin/tokens/revoke                             forget one client's tokens
    GET    /admin/rate-limits                               every limiter's settings, by name
    GET    /admin/rate-limits/{name}                        one limiter
    PUT    /admin/rate-limits/{name}                        change limit / window_s / enabled
    POST   /admin/rate-limits/{name}/reset                  forget the counters (all keys, or {"key"})

Rotation overlap: a new secret or key never replaces the old ones; both authenticate until the old
one is revoked (`simulators.admin.clients`). Answers never carry a secret, except the one generated
by `POST .../secrets {}`, answered once to the caller who asked for it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, model_validator

from simulators.admin.auth import ADMIN_SECURITY, admin_route_class
from simulators.admin.clients import ClientError, ClientRegistry, InvalidCredential, UnknownClient, UnknownCredential
from simulators.admin.ratelimit import WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.fhir.outcome import OutcomeError, operation_outcome

logger = logging.getLogger(__name__)

ClientId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._~:@\-]{1,256}$")]
CredentialId = Annotated[str, Path(pattern=r"^cred-[0-9a-f]{12}$")]
LimiterName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
#: Longest window a limiter may be given: 1 day.
MAX_WINDOW_S = 86_400.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class AddSecret(_Body):
    """A secret to add; omit it to have one generated from the simulator's rng (answered once)."""

    secret: SecretStr | None = Field(default=None, min_length=1, max_length=512)
    length: int = Field(default=40, ge=16, le=256, description="length of a generated secret")


class AddKey(_Body):
    """A public JWK to add (RSA or EC); private members are refused."""

    jwk: dict[str, Any]


class ExpireTokens(_Body):
    client_id: str | None = Field(default=None, min_length=1, max_length=256,
                                  description="only this client's tokens; null: every token")


class RevokeTokens(_Body):
    client_id: str = Field(min_length=1, max_length=256)


class LimiterSettings(_Body):
    """New settings; at least one field. They apply at once, to windows already open too."""

    limit: int | None = Field(default=None, ge=0, le=1_000_000_000)
    window_s: float | None = Field(default=None, gt=0, le=MAX_WINDOW_S)
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> LimiterSettings:
        if self.limit is None and self.window_s is None and self.enabled is None:
            raise ValueError("give at least one of limit, window_s, enabled")
        return self


class ResetLimiter(_Body):
    key: str | None = Field(default=None, min_length=1, max_length=256, description="one key; null: all")


def _error(status: int, code: str, text: str) -> OutcomeError:
    return OutcomeError(status, operation_outcome(code, text))


def _client_error(exc: ClientError) -> OutcomeError:
    if isinstance(exc, (UnknownClient, UnknownCredential)):
        return _error(404, "not-found", str(exc))
    if isinstance(exc, InvalidCredential):
        return _error(400, "invalid", str(exc))
    return _error(400, "invalid", str(exc))


def credentials_router(registry: ClientRegistry, admin_token: str) -> APIRouter:
    router = APIRouter(prefix="/admin/clients", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: credentials"])

    def describe(client_id: str) -> dict[str, object]:
        info = registry.get(client_id)
        if info is None:
            raise _error(404, "not-found", f"no client {client_id!r}")
        return {"client_id": info.client_id, "scopes": list(info.scopes), "tenant": info.tenant,
                "jwks_url": info.jwks_url,
                "credentials": [c.to_json() for c in registry.credentials(client_id)]}

    @router.get("", summary="Every client and its credentials (never a secret)")
    async def list_clients() -> JSONResponse:
        return JSONResponse({"clients": [describe(client_id) for client_id in registry.client_ids()]})

    @router.get("/{client_id}", summary="One client and its credentials")
    async def get_client(client_id: ClientId) -> JSONResponse:
        return JSONResponse(describe(client_id))

    @router.post("/{client_id}/secrets", status_code=201, summary="Add a secret (the old ones stay valid)")
    async def add_secret(client_id: ClientId, body: AddSecret) -> JSONResponse:
        try:
            if body.secret is None:
                credential_id, secret = registry.generate_secret(client_id, body.length)
                answer = {"id": credential_id, "secret": secret}
            else:
                answer = {"id": registry.add_secret(client_id, body.secret.get_secret_value())}
        except ClientError as exc:
            raise _client_error(exc) from None
        logger.info("admin: secret %s added to client %s", answer["id"], client_id)
        return JSONResponse(answer, status_code=201)

    @router.post("/{client_id}/keys", status_code=201, summary="Add a public JWK (the old keys stay valid)")
    async def add_key(client_id: ClientId, body: AddKey) -> JSONResponse:
        try:
            credential_id = registry.add_key(client_id, body.jwk)
        except ClientError as exc:
            raise _client_error(exc) from None
        logger.info("admin: key %s added to client %s", credential_id, client_id)
        return JSONResponse({"id": credential_id}, status_code=201)

    @router.delete("/{client_id}/credentials/{credential_id}", summary="Revoke one credential")
    async def revoke(client_id: ClientId, credential_id: CredentialId) -> JSONResponse:
        try:
            registry.revoke(client_id, credential_id)
        except ClientError as exc:
            raise _client_error(exc) from None
        logger.info("admin: credential %s of client %s revoked", credential_id, client_id)
        return JSONResponse(describe(client_id))

    return router


def tokens_router(tokens: TokenStore, admin_token: str) -> APIRouter:
    router = APIRouter(prefix="/admin/tokens", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: tokens"])

    @router.get("", summary="How many access tokens are valid now")
    async def count_tokens() -> JSONResponse:
        return JSONResponse({"active": tokens.active(), "lifetime_s": tokens.lifetime_s})

    @router.post("/expire", summary="Force every token (or one client's) to expire now")
    async def expire(body: ExpireTokens | None = None) -> JSONResponse:
        client_id = None if body is None else body.client_id
        expired = tokens.expire(client_id)
        logger.info("admin: %d token(s) expired (client=%s)", expired, client_id or "*")
        return JSONResponse({"expired": expired})

    @router.post("/revoke", summary="Forget one client's tokens")
    async def revoke(body: RevokeTokens) -> JSONResponse:
        revoked = tokens.revoke_client(body.client_id)
        logger.info("admin: %d token(s) revoked (client=%s)", revoked, body.client_id)
        return JSONResponse({"revoked": revoked})

    return router


def rate_limits_router(limiters: dict[str, WindowRateLimiter], admin_token: str) -> APIRouter:
    router = APIRouter(prefix="/admin/rate-limits", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: rate limits"])

    def limiter(name: str) -> WindowRateLimiter:
        found = limiters.get(name)
        if found is None:
            raise _error(404, "not-found", f"no rate limiter {name!r} (known: {', '.join(sorted(limiters))})")
        return found

    @router.get("", summary="Every rate limiter's settings")
    async def list_limits() -> JSONResponse:
        return JSONResponse({name: limiters[name].settings() for name in sorted(limiters)})

    @router.get("/{name}", summary="One rate limiter's settings")
    async def get_limit(name: LimiterName) -> JSONResponse:
        return JSONResponse(limiter(name).settings())

    @router.put("/{name}", summary="Change a rate limiter at run time")
    async def put_limit(name: LimiterName, body: LimiterSettings) -> JSONResponse:
        found = limiter(name)
        found.configure(limit=body.limit, window_s=body.window_s, enabled=body.enabled)
        logger.info("admin: rate limiter %s now %s", name, found.settings())
        return JSONResponse(found.settings())

    @router.post("/{name}/reset", summary="Forget a rate limiter's counters")
    async def reset_limit(name: LimiterName, body: ResetLimiter | None = None) -> JSONResponse:
        limiter(name).reset(None if body is None else body.key)
        return JSONResponse(limiter(name).settings())

    return router
