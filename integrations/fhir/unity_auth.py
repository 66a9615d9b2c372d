"""Allscripts/Veradigm Unity security tokens as an `httpx.Auth` flow, and a small Unity client on it.

Unity's JSON API (reference/vendors.md §4; healthfinch/allscripts-unity-client), under
`/Unity/UnityService.svc/json`:

- `POST /GetToken {"Username", "Password", "Appname"}` answers the token as a **raw string** body, or a
  string containing `error:` (HTTP 200) when it refuses;
- `POST /MagicJson {"Action", "AppUserID", "Appname", "PatientID", "Token", "Parameter1".."Parameter6",
  "Data"}` answers `[{"<action>info": [rows]}]`, or `[{"Error": "..."}]` with HTTP 200, which is also how an
  expired or retired token is refused;
- `POST /RetireSecurityToken {"Token", "Appname"}` ends the session at once.

`UnityTokenAuth` is a `TokenFlow` (the same cache, 60 s margin, single-flight refresh, credential
fallback and one refresh-and-resend as the OAuth flows; runbook `002_437ee203264dfa64.txt §2.1`): the
token goes into the JSON body's `Token` field instead of a header, and "refused token" is an error row
about the security token. GetToken says nothing about the token's lifetime and none is documented
(vendors.md §4), so `token_lifetime_s` is a setting (default 1200 s, the 20 minutes of Allscripts'
FHIR tokens and of the lab's simulator); refresh-on-error covers a server that ends sessions sooner.
A GetToken error naming the username or password is a credential refusal (`invalid_client` in events,
`AuthError`); GetToken answering 5xx is a `ServerError`, 429 `RateLimited`, a 200 without a usable token
`MalformedResponse` (`token_flow.token_endpoint_error`, runbook 000 §4).

`UnityClient.magic(action, ...)` makes one call and returns the rows; `aclose()` retires the token
(RetireSecurityToken) before closing, so a shut-down integration leaves no live session behind.
Unity error rows are classified, never quoted (they may echo input): an expired token after the one
refresh is `AuthError`, the request limit `RateLimited`, anything else `UnityCallFailed`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence

import httpx

from integrations.clock import Clock
from integrations.events import EventListener, ignore_event
from integrations.fhir._boundary import no_answer
from integrations.fhir.auth_errors import UnityCallFailed
from integrations.fhir.credentials import (
    ClientCredentials,
    Credential,
    CredentialSource,
    CredentialsProvider,
    RotatingCredentials,
)
from integrations.fhir.errors import (
    AuthError,
    ConnectorError,
    MalformedResponse,
    RateLimited,
    ServerError,
    UnexpectedStatus,
)
from integrations.fhir.models import CORRELATION_HEADER, JsonObject, JsonValue
from integrations.fhir.token_flow import AccessToken, TokenCache, TokenFlow, token_endpoint_error

logger = logging.getLogger(__name__)

UNITY_PATH = "/Unity/UnityService.svc/json"
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,4096}")
_PARAMETERS = tuple(f"Parameter{i}" for i in range(1, 7))


def _error_row(body: object) -> str | None:
    """The text of Unity's `[{"Error": "..."}]`, else None."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        error = body[0].get("Error")
        if isinstance(error, str):
            return error
    return None


def _json(content: bytes) -> object:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_token_error(text: str) -> bool:
    return "security token" in text.lower()


class UnityTokenAuth(TokenFlow):
    """Unity security tokens for MagicJson calls; see the module docstring. AsyncClient only."""

    def __init__(self, *, unity_url: str, appname: str,
                 credentials: CredentialsProvider | CredentialSource | RotatingCredentials, clock: Clock,
                 vendor: str = "allscripts", cache: TokenCache | None = None, listener: EventListener = ignore_event,
                 token_lifetime_s: float = 1200.0, retire_timeout_s: float = 10.0) -> None:
        if token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be positive")
        super().__init__(vendor=vendor, credentials=credentials, clock=clock, cache=cache, listener=listener)
        self.unity_url = unity_url.rstrip("/")
        self.appname = appname
        self.token_lifetime_s = token_lifetime_s
        self._retire_timeout_s = retire_timeout_s

    def __repr__(self) -> str:
        return f"UnityTokenAuth(vendor={self.vendor!r}, unity_url={self.unity_url!r}, appname={self.appname!r})"

    def _token_request(self, credential: Credential, correlation_id: str | None) -> httpx.Request:
        if not isinstance(credential, ClientCredentials):
            raise TypeError("Unity GetToken needs a username and password, not a signing key")
        headers = {"Accept": "text/plain, application/json"}
        if correlation_id is not None:
            headers[CORRELATION_HEADER] = correlation_id
        body = {"Username": credential.client_id, "Password": credential.client_secret, "Appname": self.appname}
        return httpx.Request("POST", f"{self.unity_url}/GetToken", headers=headers, json=body)

    async def _read_token(self, response: httpx.Response, correlation_id: str | None) -> tuple[str, float]:
        await response.aread()
        status = response.status_code
        if status != 200:
            raise token_endpoint_error(f"Unity GetToken answered HTTP {status}", vendor=self.vendor, status=status,
                                       correlation_id=correlation_id, retry_after=response.headers.get("retry-after"),
                                       now=self._clock.now())
        text = response.content.decode("utf-8", "replace").strip()
        if text.startswith('"'):  # some hosts wrap the raw string in JSON quotes
            decoded = _json(text.encode())
            text = decoded if isinstance(decoded, str) else ""
        if "error:" in text.lower():
            refused = any(word in text.lower() for word in ("username", "password"))
            raise AuthError("Unity GetToken refused " + ("the username and password" if refused else "the request"),
                            vendor=self.vendor, status=status, correlation_id=correlation_id,
                            oauth_error="invalid_client" if refused else "unity_error", token_endpoint=True)
        if not _TOKEN_CHARS.fullmatch(text):
            raise MalformedResponse("Unity GetToken answered without a usable token", vendor=self.vendor,
                                    status=status, correlation_id=correlation_id, token_endpoint=True)
        return text, self.token_lifetime_s

    def _is_rejection(self, error: AuthError) -> bool:
        return error.oauth_error == "invalid_client"

    def _attach(self, request: httpx.Request, token: AccessToken) -> httpx.Request:
        body = _json(request.content)
        if not isinstance(body, dict):
            raise ValueError("a Unity call's body must be a JSON object")
        body["Token"] = token.value
        body.setdefault("Appname", self.appname)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")}
        return httpx.Request(request.method, request.url, headers=headers, json=body, extensions=request.extensions)

    async def _token_refused(self, response: httpx.Response) -> bool:
        if response.status_code == 401:
            return True
        if response.status_code != 200:
            return False
        await response.aread()
        error = _error_row(_json(response.content))
        return error is not None and _is_token_error(error)

    async def retire(self, client: httpx.AsyncClient) -> bool:
        """RetireSecurityToken for the cached token, if it is still live; True when Unity confirmed it.

        Never raises for Unity's or the network's sake: a shutdown must finish. The token is dropped either way.
        """
        async with self._lock:
            token = self.cache.peek()
            if token is None:
                return False
            self.cache.invalidate(token)
            if self._clock.monotonic() >= token.expires_at:
                return False
            try:
                async with self._clock.timeout(self._retire_timeout_s):
                    request = client.build_request("POST", f"{self.unity_url}/RetireSecurityToken",
                                                   json={"Token": token.value, "Appname": self.appname})
                    response = await client.send(request, auth=None)  # not through this flow
                    await response.aread()
            except (TimeoutError, httpx.HTTPError) as exc:
                logger.warning("%s: RetireSecurityToken failed (%s)", self.vendor, type(exc).__name__)
                return False
            retired = response.status_code == 200 and "error:" not in response.text.lower()
            logger.info("%s Unity security token %s", self.vendor, "retired" if retired else "not retired (refused)")
            return retired


class UnityClient:
    """MagicJson calls through `UnityTokenAuth`; owns its `httpx.AsyncClient` (close with `aclose()`)."""

    def __init__(self, *, auth: UnityTokenAuth, transport: httpx.AsyncBaseTransport, clock: Clock,
                 app_user: str = "ehrlab", attempt_timeout_s: float = 10.0) -> None:
        self.auth = auth
        self.vendor = auth.vendor
        self.app_user = app_user
        self._clock = clock
        self._timeout_s = attempt_timeout_s
        self._client = httpx.AsyncClient(transport=transport, auth=auth, timeout=None, follow_redirects=False,
                                         trust_env=False)

    def __repr__(self) -> str:
        return f"UnityClient(vendor={self.vendor!r}, unity_url={self.auth.unity_url!r})"

    async def magic(self, action: str, *, patient_id: str = "", parameters: Sequence[str] = (),
                    data: str = "") -> list[JsonObject]:
        """One MagicJson call: the rows of `[{"<action>info": rows}]`."""
        if len(parameters) > len(_PARAMETERS):
            raise ValueError("Unity takes at most six parameters")
        body: dict[str, str] = {"Action": action, "AppUserID": self.app_user, "Appname": self.auth.appname,
                                "PatientID": patient_id, "Token": "", "Data": data}
        body.update({name: (parameters[i] if i < len(parameters) else "") for i, name in enumerate(_PARAMETERS)})
        response = await self._send(action, body)
        payload = _json(response.content)
        error = _error_row(payload)
        if error is not None:
            if _is_token_error(error):
                raise AuthError(f"Unity refused the security token for {action} (after one refresh)",
                                vendor=self.vendor, status=200)
            if "limit" in error.lower():
                raise RateLimited(f"Unity request limit reached ({action})", vendor=self.vendor, status=200)
            raise UnityCallFailed(f"Unity {action} answered an error row", vendor=self.vendor, status=200)
        rows = payload[0].get(f"{action.lower()}info") if isinstance(payload, list) and payload and isinstance(
            payload[0], dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise MalformedResponse(f"Unity {action} answered without its rows", vendor=self.vendor, status=200)
        return [_object(row) for row in rows]

    async def _send(self, action: str, body: dict[str, str]) -> httpx.Response:
        request = self._client.build_request("POST", f"{self.auth.unity_url}/MagicJson", json=body)
        try:
            async with self._clock.timeout(self._timeout_s):
                response = await self._client.send(request)
                await response.aread()
        except ConnectorError:
            raise
        except (TimeoutError, httpx.TransportError) as exc:
            raise no_answer(exc, request, label=f"Unity {action}", timeout_s=self._timeout_s, vendor=self.vendor,
                            correlation_id=None) from exc
        status = response.status_code
        if status == 200:
            return response
        if status == 401:
            raise AuthError(f"HTTP 401 from Unity {action}", vendor=self.vendor, status=status)
        if status >= 500:
            raise ServerError(f"HTTP {status} from Unity {action}", vendor=self.vendor, status=status)
        raise UnexpectedStatus(f"HTTP {status} from Unity {action}", vendor=self.vendor, status=status)

    async def aclose(self) -> None:
        """Retire the security token (RetireSecurityToken), then close the HTTP client."""
        try:
            await self.auth.retire(self._client)
        finally:
            await self._client.aclose()


def _object(row: dict[object, object]) -> JsonObject:
    return {str(k): _value(v) for k, v in row.items()}


def _value(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return _object(value)
    return str(value)
