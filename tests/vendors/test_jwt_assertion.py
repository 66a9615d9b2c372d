"""Client assertions: the verifier Epic's token endpoint uses, and the client's `PrivateKeyJwt`."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.fhir.auth import ClientCredentials
from integrations.fhir.jwt_assertion import JWT_BEARER, PrivateKeyJwt
from simulators.admin.clients import ClientRegistry
from simulators.epic.assertion import AssertionVerifier, InvalidClientAssertion, JwksFetcher
from tests.vendors.keys import CLIENT_ID, claims, ec_key, public_jwks, rsa_key, sign

AUD = "http://epic.test/oauth2/token"
JWKS_URL = "https://app.example/jwks.json"


def _verifier(clock: VirtualClock, *, jwks: dict[str, Any] | None = None, url: str | None = None,
              transport: httpx.AsyncBaseTransport | None = None) -> tuple[AssertionVerifier, ClientRegistry]:
    registry = ClientRegistry(clock, random.Random(1))
    registry.register(CLIENT_ID, jwks=jwks, jwks_url=url)

    def jwks_url(client_id: str) -> str | None:
        info = registry.get(client_id)
        return None if info is None else info.jwks_url

    fetcher = JwksFetcher(clock, transport)
    return AssertionVerifier(clock, registry, jwks_urls=jwks_url, fetcher=fetcher), registry


def _verify(assertion_for: Any, **kwargs: Any) -> str:
    """Run `verifier.verify(assertion_for(now))` on the virtual clock; the reason if refused."""
    clock = VirtualClock()

    async def main() -> str:
        verifier, _ = _verifier(clock, **kwargs)
        try:
            return await verifier.verify(assertion_for(clock.now().timestamp()), [AUD])
        except InvalidClientAssertion as exc:
            return f"refused: {exc.reason}"

    return run_virtual(main)


STATIC = {"jwks": public_jwks(rsa_key(), ec_key())}


def test_valid_rs384_and_es384_assertions_authenticate_the_client() -> None:
    assert _verify(lambda now: sign(claims(now, AUD), rsa_key()), **STATIC) == CLIENT_ID
    assert _verify(lambda now: sign(claims(now, AUD), ec_key(), alg="ES384"), **STATIC) == CLIENT_ID


@pytest.mark.parametrize(("make", "reason"), [
    (lambda now: sign(claims(now, AUD), rsa_key(), alg="RS256"), "alg must be one of"),
    (lambda now: sign(claims(now, AUD), ec_key("ec-256", "P-256"), alg="ES256"), "alg must be one of"),
    (lambda now: sign(claims(now, AUD), rsa_key(), header={"kid": ""}), "kid header is required"),
    (lambda now: sign(claims(now, AUD), rsa_key(), header={"kid": "nope"}), "no registered key matches"),
    (lambda now: sign(claims(now, AUD), rsa_key(), typ=None), "typ header must be JWT"),
    (lambda now: sign(claims(now, AUD, sub="someone-else"), rsa_key()), "sub must equal iss"),
    (lambda now: sign(claims(now, AUD, client_id="stranger"), rsa_key()), "iss is not a registered client"),
    (lambda now: sign(claims(now, "http://elsewhere.test/oauth2/token"), rsa_key()), "aud must be the token"),
    (lambda now: sign(claims(now, AUD, lifetime=301), rsa_key()), "more than 300 s in the future"),
    (lambda now: sign(claims(now, AUD, lifetime=-1), rsa_key()), "expired"),
    (lambda now: sign({k: v for k, v in claims(now, AUD).items() if k != "exp"}, rsa_key()), "missing claim(s): exp"),
    (lambda now: sign({k: v for k, v in claims(now, AUD).items() if k != "jti"}, rsa_key()), "missing claim(s): jti"),
    (lambda now: sign(claims(now, AUD, nbf=int(now) + 60), rsa_key()), "invalid claim nbf"),
    (lambda now: sign(claims(now, AUD), ec_key(), alg="ES384", header={"kid": rsa_key().kid}), "no registered key"),
    (lambda now: "not.a.jwt", "not a well-formed JWT"),
    (lambda now: "x" * 20, "not a JWS compact"),
])
def test_each_invalid_assertion_is_refused_for_its_own_reason(make: Any, reason: str) -> None:
    result = _verify(make, **STATIC)
    assert result.startswith("refused: "), result
    assert reason in result


def test_a_signature_by_another_key_with_the_registered_kid_is_refused() -> None:
    impostor = rsa_key("impostor")
    forged = lambda now: sign(claims(now, AUD), impostor, header={"kid": rsa_key().kid})  # noqa: E731
    assert _verify(forged, **STATIC) == "refused: the signature does not verify with the registered key"


def test_a_replayed_jti_is_refused_within_the_lifetime_and_forgotten_after() -> None:
    clock = VirtualClock()

    async def main() -> list[str]:
        verifier, _ = _verifier(clock, **STATIC)
        results = []
        first = sign(claims(clock.now().timestamp(), AUD, jti="once", lifetime=120), rsa_key())
        for assertion in (first, first):
            try:
                results.append(await verifier.verify(assertion, [AUD]))
            except InvalidClientAssertion as exc:
                results.append(exc.reason)
        await clock.sleep(121)  # the first assertion expired: its jti may be used again
        again = sign(claims(clock.now().timestamp(), AUD, jti="once", lifetime=120), rsa_key())
        results.append(await verifier.verify(again, [AUD]))
        return results

    assert run_virtual(main) == [CLIENT_ID, "jti was already used (replayed assertion)", CLIENT_ID]


def _jwks_transport(documents: list[dict[str, Any]], cache_control: str | None, seen: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        headers = {"Cache-Control": cache_control} if cache_control else {}
        return httpx.Response(200, json=documents[min(len(seen), len(documents)) - 1], headers=headers)

    return httpx.MockTransport(handler)


def test_keys_by_jwks_url_are_fetched_once_and_cached_per_cache_control() -> None:
    clock = VirtualClock()
    seen: list[str] = []

    async def main() -> list[str]:
        transport = _jwks_transport([public_jwks(ec_key())], "max-age=60", seen)
        verifier, _ = _verifier(clock, url=JWKS_URL, transport=transport)
        ids = []
        for jti in ("a", "b"):
            ids.append(await verifier.verify(sign(claims(clock.now().timestamp(), AUD, jti=jti), ec_key(),
                                                  alg="ES384"), [AUD]))
        await clock.sleep(61)
        ids.append(await verifier.verify(sign(claims(clock.now().timestamp(), AUD, jti="c"), ec_key(),
                                              alg="ES384"), [AUD]))
        return ids

    assert run_virtual(main) == [CLIENT_ID] * 3
    assert seen == [JWKS_URL, JWKS_URL]  # cached for max-age=60, fetched again after


def test_an_unknown_kid_refreshes_the_jwks_once_so_a_rotated_key_works() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    rotated = ec_key("ec-2")

    async def main() -> str:
        transport = _jwks_transport([public_jwks(ec_key()), public_jwks(ec_key(), rotated)], "max-age=3600", seen)
        verifier, _ = _verifier(clock, url=JWKS_URL, transport=transport)
        await verifier.verify(sign(claims(clock.now().timestamp(), AUD, jti="1"), ec_key(), alg="ES384"), [AUD])
        return await verifier.verify(sign(claims(clock.now().timestamp(), AUD, jti="2"), rotated, alg="ES384"), [AUD])

    assert run_virtual(main) == CLIENT_ID
    assert len(seen) == 2


def test_a_jku_other_than_the_registered_url_is_refused() -> None:
    transport = _jwks_transport([public_jwks(ec_key())], None, [])
    result = _verify(lambda now: sign(claims(now, AUD), ec_key(), alg="ES384", header={"jku": "https://evil.example/"}),
                     url=JWKS_URL, transport=transport)
    assert result == "refused: jku does not match the client's registered JWKS URL"


def test_an_unreachable_jwks_url_refuses_the_assertion_without_a_traceback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = _verify(lambda now: sign(claims(now, AUD), ec_key(), alg="ES384"), url=JWKS_URL,
                     transport=httpx.MockTransport(handler))
    assert result == "refused: the client's JWKS URL could not be fetched"


# -- the client side ---------------------------------------------------------------------------


def _decoded(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from joserfc import jwt

    token = jwt.decode(assertion, ec_key() if '"ES384"' in _header_json(assertion) else rsa_key(),
                       algorithms=["RS384", "ES384"])
    return dict(token.header), token.claims


def _header_json(assertion: str) -> str:
    import base64

    head = assertion.split(".")[0]
    return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()


@pytest.mark.parametrize(("alg", "key"), [("RS384", rsa_key), ("ES384", ec_key)])
def test_private_key_jwt_puts_a_fresh_smart_assertion_in_the_form(alg: Any, key: Any) -> None:
    clock = VirtualClock()

    async def main() -> tuple[list[dict[str, str]], float]:
        auth = PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(3), key=key(), kid=key().kid, alg=alg,
                             lifetime_s=240)
        forms = []
        for _ in range(2):
            form: dict[str, str] = {"grant_type": "client_credentials"}
            auth.apply(ClientCredentials(CLIENT_ID, ""), form, {})
            forms.append(form)
        return forms, clock.now().timestamp()

    forms, now = run_virtual(main)
    headers_claims = [_decoded(form["client_assertion"]) for form in forms]
    for form, (header, body) in zip(forms, headers_claims, strict=True):
        assert form["client_assertion_type"] == JWT_BEARER
        assert "client_secret" not in form
        assert "client_id" not in form
        assert header == {"alg": alg, "kid": key().kid, "typ": "JWT"}
        assert body["iss"] == body["sub"] == CLIENT_ID
        assert body["aud"] == AUD
        assert body["exp"] == int(now + 240)
    assert headers_claims[0][1]["jti"] != headers_claims[1][1]["jti"]


def test_private_key_jwt_assertions_pass_the_epic_verifier() -> None:
    clock = VirtualClock()

    async def main() -> str:
        verifier, _ = _verifier(clock, **STATIC)
        auth = PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(3), key=ec_key(), kid="ec-1", alg="ES384")
        return await verifier.verify(auth.assertion(CLIENT_ID), [AUD])

    assert run_virtual(main) == CLIENT_ID


def test_private_key_jwt_refuses_bad_configuration_without_showing_the_key() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"lifetime_s must be in"):
        PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(), key=rsa_key(), kid="k", lifetime_s=301)
    with pytest.raises(ValueError, match="ES384 needs an EC key"):
        PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(), key=rsa_key(), kid="k", alg="ES384")
    with pytest.raises(ValueError, match="private key"):
        PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(), kid="k",
                      key=_public_only(rsa_key()))
    auth = PrivateKeyJwt(token_url=AUD, clock=clock, rng=random.Random(), key=rsa_key(), kid="k")
    private_d = str(rsa_key().as_dict(private=True)["d"])
    assert private_d not in repr(auth)
    assert "kid='k'" in repr(auth)


def _public_only(key: Any) -> Any:
    from joserfc.jwk import RSAKey

    return RSAKey.import_key(key.as_dict(private=False))
