"""Authentication of the service's three kinds of caller, as FastAPI dependencies (see `config`).

- `OperatorAuth`: `Authorization: Bearer <operator token>`; none, or not a bearer token, is 401 (with
  `WWW-Authenticate: Bearer`), a wrong one 403.
- `CronAuth`: `X-Cron-Secret`; none or a wrong one is 403 (runbook 002 §10.2 "Verify protection": both
  "Should return 403").
- `CallerAuth`: an API key as a bearer token (401 without, 403 wrong) and `X-Org-ID` naming an
  organisation the key may act for (400 missing or malformed, 403 another one); `X-User-ID` defaults to
  the key's name. `ExportCallerAuth` adds `X-User-ID` and `X-Role` (both required, 400 otherwise).

Secrets are compared with `hmac.compare_digest`, every configured key every time, so the time an answer
takes says nothing about how much of a secret was right or which key was close. Nothing here logs a
presented secret or header value.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from fastapi import Request

from integrations.service.config import ApiClient, ServiceConfig
from integrations.service.errors import BadRequest, Forbidden, Unauthenticated

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def identifier_header(request: Request, name: str, *, required: bool = True) -> str | None:
    value = request.headers.get(name)
    if value is None or not value.strip():
        if required:
            raise BadRequest(f"missing {name} header", code="missing_header")
        return None
    value = value.strip()
    if not IDENTIFIER.fullmatch(value):
        raise BadRequest(f"malformed {name} header (letters, digits and _.:@- only, at most 128)",
                         code="malformed_header")
    return value


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated external caller: the API client, the organisation it acts for, the user."""

    client: ApiClient
    org_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class ExportCaller:
    caller: Caller
    role: str  # as sent in X-Role, upper-cased; the export layer decides what it may do


class OperatorAuth:
    def __init__(self, config: ServiceConfig) -> None:
        self._token = config.operator_token

    async def __call__(self, request: Request) -> None:
        if not _same(bearer_token(request), self._token):
            raise Forbidden("invalid operator token", code="invalid_token")


class CronAuth:
    def __init__(self, config: ServiceConfig) -> None:
        self._secret = config.cron_secret

    async def __call__(self, request: Request) -> None:
        presented = request.headers.get("x-cron-secret")
        if presented is None:
            raise Forbidden("missing X-Cron-Secret header", code="invalid_cron_secret")
        if not _same(presented, self._secret):
            raise Forbidden("invalid X-Cron-Secret", code="invalid_cron_secret")


class CallerAuth:
    def __init__(self, config: ServiceConfig) -> None:
        self._keys = tuple(config.api_keys.items())

    def client(self, request: Request) -> ApiClient:
        token = bearer_token(request)
        found: ApiClient | None = None
        for key, client in self._keys:  # no early exit: every key is compared
            if _same(token, key):
                found = client
        if found is None:
            raise Forbidden("invalid API key", code="invalid_token")
        return found

    async def __call__(self, request: Request) -> Caller:
        client = self.client(request)
        org_id = identifier_header(request, "X-Org-ID")
        assert org_id is not None
        if org_id not in client.org_ids:
            raise Forbidden("this API key may not act for that organisation", code="wrong_organisation")
        user_id = identifier_header(request, "X-User-ID", required=False) or client.name
        return Caller(client=client, org_id=org_id, user_id=user_id)


class ExportCallerAuth:
    def __init__(self, config: ServiceConfig) -> None:
        self._callers = CallerAuth(config)

    async def __call__(self, request: Request) -> ExportCaller:
        caller = await self._callers(request)
        identifier_header(request, "X-User-ID")
        role = identifier_header(request, "X-Role")
        assert role is not None
        return ExportCaller(caller=caller, role=role.upper())
