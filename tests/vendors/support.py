"""Shared helpers for the vendor contract tests: simulators with test credentials, in-process clients."""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx

from harness.clock import VirtualClock, run_virtual
from simulators.allscripts import AllscriptsClient, AllscriptsSettings, AllscriptsSimulator, create_allscripts
from simulators.cerner import SANDBOX_TENANT, CernerClient, CernerSettings, CernerSimulator, create_cerner
from simulators.epic import EpicClient, EpicSettings, EpicSimulator, create_epic
from simulators.transport import VirtualTransport
from tests.vendors.keys import CLIENT_ID, claims, ec_key, public_jwks, rsa_key, sign

T = TypeVar("T")

ADMIN_TOKEN = "admin-token-for-vendor-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "s3cret-value-for-vendor-tests"
OTHER_TENANT = "0b8a0111-e8e6-4c26-a91c-5069cbc6b1ca"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def virtual(main: Callable[[VirtualClock], Awaitable[T]]) -> T:
    """Run `main(clock)` on a fresh virtual clock."""
    clock = VirtualClock()
    return run_virtual(lambda: main(clock))


@asynccontextmanager
async def client_for(app: Any, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=VirtualTransport(app), base_url=base_url) as client:
        yield client


# -- Epic ----------------------------------------------------------------------------------------

EPIC_URL = "http://epic.test"
EPIC_TOKEN_URL = f"{EPIC_URL}/oauth2/token"
EPIC_FHIR = "/api/FHIR/R4"


def make_epic(clock: VirtualClock, *, scopes: tuple[str, ...] = ("system/*.cruds",), seed: int = 7,
              jwks_transport: httpx.AsyncBaseTransport | None = None, jwks_url: str | None = None,
              **settings: Any) -> EpicSimulator:
    jwks = None if jwks_url else public_jwks(rsa_key(), ec_key())
    client = EpicClient(client_id=CLIENT_ID, jwks=jwks, jwks_url=jwks_url, scopes=scopes)
    config = EpicSettings(clients=(client,), admin_token=ADMIN_TOKEN, **settings)
    return create_epic(config, clock, random.Random(seed), jwks_transport=jwks_transport)


def epic_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion,
            **extra}


async def epic_token(client: httpx.AsyncClient, clock: VirtualClock, *, jti: str = "jti-1", **extra: str) -> str:
    assertion = sign(claims(clock.now().timestamp(), str(client.base_url.join("oauth2/token")), jti=jti), rsa_key())
    response = await client.post("/oauth2/token", data=epic_form(assertion, **extra))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


# -- Cerner --------------------------------------------------------------------------------------

CERNER_URL = "http://cerner.test"
CERNER_FHIR = f"/r4/{SANDBOX_TENANT}"
CERNER_TOKEN_PATH = f"/tenants/{SANDBOX_TENANT}/protocols/oauth2/profiles/smart-v1/token"


def make_cerner(clock: VirtualClock, *, scopes: tuple[str, ...] = ("system/*.read", "system/*.write"),
                seed: int = 7, **settings: Any) -> CernerSimulator:
    clients = (CernerClient(client_id=CLIENT_ID, secret=SECRET, tenant=SANDBOX_TENANT, scopes=scopes),
               CernerClient(client_id="other-tenant-app", secret=SECRET, tenant=OTHER_TENANT))
    config = CernerSettings(tenants=(SANDBOX_TENANT, OTHER_TENANT), clients=clients, admin_token=ADMIN_TOKEN,
                            **settings)
    return create_cerner(config, clock, random.Random(seed))


async def cerner_token(client: httpx.AsyncClient, scope: str = "system/Patient.read system/Patient.write",
                       *, client_id: str = CLIENT_ID, tenant: str = SANDBOX_TENANT) -> str:
    response = await client.post(f"/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token",
                                 data={"grant_type": "client_credentials", "scope": scope},
                                 headers=basic(client_id, SECRET))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


# -- Allscripts ----------------------------------------------------------------------------------

ALLSCRIPTS_URL = "http://allscripts.test"
UNITY = "/Unity/UnityService.svc/json"
APPNAME = "ehrlab"


def make_allscripts(clock: VirtualClock, *, scopes: tuple[str, ...] = ("system/*.read",), seed: int = 7,
                    **settings: Any) -> AllscriptsSimulator:
    client = AllscriptsClient(client_id=CLIENT_ID, secret=SECRET, scopes=scopes)
    config = AllscriptsSettings(clients=(client,), admin_token=ADMIN_TOKEN, unity_appname=APPNAME, **settings)
    return create_allscripts(config, clock, random.Random(seed))


async def allscripts_token(client: httpx.AsyncClient, **extra: str) -> str:
    response = await client.post("/authorization/connect/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET, **extra})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


async def unity_token(client: httpx.AsyncClient) -> str:
    response = await client.post(f"{UNITY}/GetToken", json={"Username": CLIENT_ID, "Password": SECRET,
                                                             "Appname": APPNAME})
    assert response.status_code == 200, response.text
    assert "error" not in response.text.lower()
    return response.text


async def magic(client: httpx.AsyncClient, token: str, action: str, **fields: str) -> Any:
    response = await client.post(f"{UNITY}/MagicJson", json={
        "Action": action, "AppUserID": "jmedici", "Appname": APPNAME, "Token": token, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female",
            "birthDate": "1980-02-03", **fields}
