"""`private_key_jwt` client authentication (SMART Backend Services; Epic, vendors.md §1 and §5).

`PrivateKeyJwt` is a `ClientAuthMethod` for `ClientCredentialsAuth`: for every token request it signs
a fresh client assertion and puts it into the form, RFC 7523 §2.2 / SMART `backend-services.md`:

- form: `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
  `client_assertion=<JWT>`; no `client_id`/`client_secret` (the assertion names the client);
- header: `alg` (RS384 or ES384, the two SMART requires clients to support), `kid` (required by SMART
  and Epic), `typ: JWT`;
- claims: `iss` = `sub` = the client id, `aud` = the token URL the assertion is posted to, `jti` a
  fresh nonce drawn from the injected rng (a UUID-shaped value, like Epic's samples' GUIDs), `iat` now
  and `exp` = now + `lifetime_s` on the injected clock's wall time. SMART: `exp` "no more than five
  minutes in the future", so `lifetime_s` is capped at 300 (Epic samples use 4 minutes).

Signing uses joserfc (the library the simulators verify with). RS384 (PKCS#1 v1.5) signatures are
deterministic; ES384 signatures carry a random nonce drawn by OpenSSL, so their bytes differ between
runs. Nothing downstream records an assertion (the connector journals URL paths only), so a seeded run
still behaves identically.

Key rotation without a restart: through the auth flow's credentials (`SigningKeyCredentials` from a
`CredentialSource`, newest first, the old key the fallback until the vendor revokes it; see
`integrations.fhir.credentials`), or directly with `rotate(key, kid)`, which switches the key the next
assertion is signed with (the caller registers the new public key with the vendor first).
The private key never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import random
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from integrations.clock import Clock
from integrations.fhir.credentials import Algorithm, Credential, SigningKey, SigningKeyCredentials

#: RFC 7523 §2.2 client assertion type.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART backend-services.md: `exp` no more than five minutes in the future.
MAX_LIFETIME_S = 300

__all__ = ["JWT_BEARER", "MAX_LIFETIME_S", "Algorithm", "PrivateKeyJwt", "SigningKey"]


def _check(key: SigningKey, kid: str, alg: str) -> None:
    if alg == "RS384":
        if not isinstance(key, RSAKey):
            raise ValueError("RS384 needs an RSA key")
    elif alg == "ES384":
        if not isinstance(key, ECKey) or key.curve_name != "P-384":
            raise ValueError("ES384 needs an EC key on curve P-384")
    else:
        raise ValueError(f"unsupported algorithm {alg!r} (RS384 or ES384)")
    if not key.is_private:
        raise ValueError("a client assertion is signed with a private key")
    if not kid:
        raise ValueError("kid must not be empty")


class PrivateKeyJwt:
    """Signs a fresh SMART Backend Services client assertion for every token request.

    The key is the credential's when the auth flow hands it a `SigningKeyCredentials` (key rotation
    through a credential source, with the old key as the fallback), else the one given here.
    """

    def __init__(self, *, token_url: str, clock: Clock, rng: random.Random, key: SigningKey | None = None,
                 kid: str | None = None, alg: Algorithm = "RS384", lifetime_s: float = MAX_LIFETIME_S) -> None:
        if not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise ValueError(f"lifetime_s must be in (0, {MAX_LIFETIME_S}] (SMART: exp at most 5 minutes ahead)")
        if (key is None) != (kid is None):
            raise ValueError("give both key and kid, or neither (keys then come with the credentials)")
        if key is not None and kid is not None:
            _check(key, kid, alg)
        self.token_url = token_url
        self.alg: Algorithm = alg
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._rng = rng
        self._key = key
        self._kid = kid

    def __repr__(self) -> str:
        return f"PrivateKeyJwt(token_url={self.token_url!r}, kid={self._kid!r}, alg={self.alg!r})"

    @property
    def kid(self) -> str | None:
        return self._kid

    def rotate(self, key: SigningKey, kid: str, alg: Algorithm | None = None) -> None:
        """Sign the following assertions with `key` under `kid` (and `alg`, if given)."""
        new_alg = alg or self.alg
        _check(key, kid, new_alg)
        self._key, self._kid, self.alg = key, kid, new_alg

    def assertion(self, client_id: str, signing: SigningKeyCredentials | None = None) -> str:
        """A signed client assertion for `client_id`, valid for `lifetime_s` from now, signed with
        `signing`'s key (checked here: RS384 with RSA, ES384 with EC P-384) or else the configured one."""
        if signing is not None:
            _check(signing.key, signing.kid, signing.alg)
            key, kid, alg = signing.key, signing.kid, signing.alg
        elif self._key is not None and self._kid is not None:
            key, kid, alg = self._key, self._kid, self.alg
        else:
            raise ValueError("no signing key: configure one or pass SigningKeyCredentials")
        now = self._clock.now().timestamp()
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": self.token_url,
            "jti": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "iat": int(now),
            # Rounded down: exp stays within lifetime_s of now, never a fraction of a second beyond it.
            "exp": int(now + self.lifetime_s),
        }
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def apply(self, credentials: Credential, form: dict[str, str], headers: dict[str, str]) -> None:
        signing = credentials if isinstance(credentials, SigningKeyCredentials) else None
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = self.assertion(credentials.client_id, signing)
