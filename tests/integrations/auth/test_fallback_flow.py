"""The auth flow over several credentials against a scripted OAuth vendor (httpx.MockTransport, virtual
time): newest first, the old one as fallback, every refusal reported once, no token request while every
credential on offer is known bad, a typed error; client authentication methods and the credential kinds."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import CredentialRejected, IntegrationEvent
from integrations.fhir import AuthError, ClientCredentialsAuth, ClientSecretPost
from integrations.fhir.auth_errors import ConfigurationError, CredentialsRejected
from integrations.fhir.credentials import ClientCredentials, SigningKeyCredentials, StaticCredentials
from integrations.fhir.jwt_assertion import JWT_BEARER, PrivateKeyJwt
from tests.integrations.auth.support import ec_key, rsa_key

TOKEN_URL = "https://ehr.example.test/oauth2/token"
FHIR_URL = "https://ehr.example.test/fhir/R4/Patient/p1"
OLD = ClientCredentials("app", "old-secret-value-0123456789", label="old")
NEW = ClientCredentials("app", "new-secret-value-9876543210", label="new")


@dataclass
class Vendor:
    """Accepts the secrets in `valid`; refusals answer `refusal` (Medplum: 400 invalid_request)."""

    clock: VirtualClock
    valid: set[str]
    expires_in: float = 600.0
    refusal: tuple[int, str] = (401, "invalid_client")
    tokens: dict[str, float] = field(default_factory=dict)
    presented: list[tuple[float, str]] = field(default_factory=list)  # (time, secret) per token request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            secret = parse_qs(request.content.decode())["client_secret"][0]
            self.presented.append((self.clock.monotonic(), secret))
            if secret not in self.valid:
                return httpx.Response(self.refusal[0], json={"error": self.refusal[1], "error_description": secret})
            value = f"tok-{len(self.tokens)}"
            self.tokens[value] = self.clock.monotonic() + self.expires_in
            return httpx.Response(200, json={"access_token": value, "expires_in": self.expires_in})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, -1.0) <= self.clock.monotonic():
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})


@dataclass
class Setup:
    vendor: Vendor
    source: StaticCredentials
    client: httpx.AsyncClient
    events: list[IntegrationEvent]

    async def call(self) -> str | None:
        try:
            response = await self.client.get(FHIR_URL)
        except AuthError as exc:
            return type(exc).__name__
        return None if response.status_code == 200 else str(response.status_code)

    def rejected(self) -> list[tuple[str, bool]]:
        return [(e.credential, e.fallback) for e in self.events if isinstance(e, CredentialRejected)]


def setup(clock: VirtualClock, valid: set[str], *offered: ClientCredentials, **vendor: Any) -> Setup:
    fake = Vendor(clock, valid, **vendor)
    source = StaticCredentials(*offered)
    events: list[IntegrationEvent] = []
    auth = ClientCredentialsAuth(vendor="fake", token_url=TOKEN_URL, credentials=source, clock=clock,
                                 listener=events.append)
    return Setup(fake, source, httpx.AsyncClient(transport=httpx.MockTransport(fake), auth=auth), events)


def test_the_newest_credential_is_used_and_the_old_one_never_while_the_new_one_works() -> None:
    async def main() -> Setup:
        s = setup(VirtualClock(), {NEW.client_secret, OLD.client_secret}, NEW, OLD)
        for _ in range(3):
            assert await s.call() is None
            await s.vendor.clock.sleep(600)
        return s

    s = run_virtual(main)
    assert [secret for _, secret in s.vendor.presented] == [NEW.client_secret] * 3
    assert s.rejected() == []


def test_a_refused_new_credential_falls_back_to_the_old_one_and_is_rechecked_with_a_growing_delay() -> None:
    async def main() -> Setup:
        s = setup(VirtualClock(), {OLD.client_secret}, NEW, OLD)
        for _ in range(40):  # one call a minute for 40 minutes; tokens live 600 s, refreshed every 540 s
            assert await s.call() is None
            await s.vendor.clock.sleep(60)
        return s

    s = run_virtual(main)
    new_tries = [t for t, secret in s.vendor.presented if secret == NEW.client_secret]
    # refused at 0, due again 60 s later (tried at the 540 s refresh), then 120 s, 240 s, 480 s later ...
    assert new_tries == [0.0, 540.0, 1080.0, 1620.0, 2160.0]
    assert s.rejected() == [("new", True)] * 5


def test_when_every_credential_is_refused_the_vendor_is_not_asked_again_until_the_recheck() -> None:
    async def main() -> tuple[Setup, list[str | None], int, int]:
        s = setup(VirtualClock(), set(), NEW, OLD)
        errors = [await s.call() for _ in range(10)]
        asked = len(s.vendor.presented)
        await s.vendor.clock.sleep(60)
        errors.append(await s.call())  # the recheck: both asked once more
        return s, errors, asked, len(s.vendor.presented)

    s, errors, asked, asked_later = run_virtual(main)
    assert errors == ["CredentialsRejected"] * 11
    assert (asked, asked_later) == (2, 4)
    assert s.rejected() == [("new", True), ("old", False), ("new", True), ("old", False)]


def test_a_credential_revoked_in_use_surfaces_typed_and_a_deployed_one_heals_at_once() -> None:
    async def main() -> tuple[Setup, list[str | None], CredentialsRejected]:
        s = setup(VirtualClock(), {OLD.client_secret}, OLD)
        results = [await s.call()]
        s.vendor.valid.clear()
        s.vendor.tokens.clear()  # the vendor revoked the credential and its tokens: 401, one refresh, refused
        with pytest.raises(CredentialsRejected) as caught:
            await s.client.get(FHIR_URL)
        results.append(await s.call())
        s.vendor.valid.add(NEW.client_secret)
        s.source.deploy(NEW)
        results.append(await s.call())
        return s, results, caught.value

    s, results, error = run_virtual(main)
    assert results == [None, "CredentialsRejected", None]
    assert error.credentials == ("old",)
    assert (error.status, error.oauth_error, error.sent, error.retryable) == (401, "invalid_client", True, False)
    assert OLD.client_secret not in str(error) + repr(error)
    assert [secret for _, secret in s.vendor.presented] == [OLD.client_secret, OLD.client_secret, NEW.client_secret]


@pytest.mark.parametrize("rejection_errors", [None, frozenset({"invalid_client", "invalid_request"})])
def test_which_refusals_mean_a_refused_credential_is_configurable(rejection_errors: frozenset[str] | None) -> None:
    """Medplum refuses a wrong secret with 400 invalid_request (vendors.md §3); by default that is not a
    credential refusal (it could be a malformed request), so the lab's Medplum client says so."""

    async def main() -> tuple[AuthError, int]:
        clock = VirtualClock()
        fake = Vendor(clock, {OLD.client_secret}, refusal=(400, "invalid_request"))
        extra = {} if rejection_errors is None else {"rejection_errors": rejection_errors}
        auth = ClientCredentialsAuth(vendor="medplum", token_url=TOKEN_URL, credentials=StaticCredentials(NEW, OLD),
                                     clock=clock, **extra)
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake), auth=auth) as client:
            try:
                await client.get(FHIR_URL)
            except AuthError as exc:
                return exc, len(fake.presented)
        return AuthError("no error", vendor="none"), len(fake.presented)

    error, asked = run_virtual(main)
    if rejection_errors is None:
        assert (type(error), error.oauth_error, asked) == (AuthError, "invalid_request", 1)
    else:
        assert (error.vendor, asked) == ("none", 2)  # fell back to the old secret, which worked


def test_a_secret_method_given_a_signing_key_is_a_configuration_error() -> None:
    async def main() -> ConfigurationError:
        clock = VirtualClock()
        key = SigningKeyCredentials("app", ec_key("k1"), "k1", label="current key")
        auth = ClientCredentialsAuth(vendor="medplum", token_url=TOKEN_URL, credentials=StaticCredentials(key),
                                     clock=clock, client_auth=ClientSecretPost())
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)), auth=auth) as c:
            with pytest.raises(ConfigurationError) as caught:
                await c.get(FHIR_URL)
        return caught.value

    error = run_virtual(main)
    assert error.problems == ("credential current key: client_secret_post needs a client secret, not a signing key",)


def _jwt_parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(segment: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        return decoded

    header, claims, _ = assertion.split(".")
    return part(header), part(claims)


@pytest.mark.parametrize(("alg", "key"), [("RS384", rsa_key("rs-1")), ("ES384", ec_key("es-1"))])
def test_private_key_jwt_signs_with_the_credentials_key(alg: str, key: Any) -> None:
    async def main() -> list[dict[str, str]]:
        clock = VirtualClock()
        signer = PrivateKeyJwt(token_url=TOKEN_URL, clock=clock, rng=random.Random(1), lifetime_s=300)
        credential = SigningKeyCredentials("app", key, key.kid, alg, label="k")
        forms = []
        for _ in range(2):
            form: dict[str, str] = {}
            signer.apply(credential, form, {})
            forms.append(form)
        return forms

    forms = run_virtual(main)
    parts = [_jwt_parts(f["client_assertion"]) for f in forms]
    assert all(f["client_assertion_type"] == JWT_BEARER for f in forms)
    for header, claims in parts:
        assert header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
        assert (claims["iss"], claims["sub"], claims["aud"]) == ("app", "app", TOKEN_URL)
        assert 0 < claims["exp"] - claims["iat"] <= 300  # SMART: at most five minutes ahead
    assert parts[0][1]["jti"] != parts[1][1]["jti"]  # a fresh jti for every assertion
    with pytest.raises(ValueError, match="no signing key"):
        PrivateKeyJwt(token_url=TOKEN_URL, clock=VirtualClock(), rng=random.Random(1)).apply(OLD, {}, {})
