"""Server-side check of SMART Backend Services client assertions (RFC 7523; vendors.md §1 and §5).

`AssertionVerifier.verify(assertion, audiences)` returns the authenticated client id or raises
`InvalidClientAssertion` with a short reason (never any part of the assertion). In order:

1. a JWS compact serialization whose protected header has `alg` RS384 or ES384 (the two SMART
   names; `none`, HS* and the rest are refused before any key is looked at), a non-empty `kid`
   (SMART and Epic require it) and `typ: JWT` (SMART: required; `require_typ`);
2. `iss` a registered client and `sub` equal to it (read from the unverified payload only to pick
   the client's keys; nothing is trusted until the signature is checked);
3. the key: the client's keys are its static JWKS (`KeySource.public_keys`) plus, when it registered
   a JWKS URL, the keys fetched from there (`JwksFetcher`). A `jku` header must equal the registered
   URL (SMART). Exactly one key must have the `kid` and a `kty` that fits the `alg` (RSA for RS384,
   EC for ES384); an unknown kid makes the fetcher refresh a cached JWKS once (the client may have
   rotated its keys) before failing;
4. the signature (joserfc, restricted to that one algorithm);
5. the claims (joserfc's `JWTClaimsRegistry` with `now` from the injected clock): `iss`, `sub`, `aud`
   (one of `audiences`: the token URL the assertion was posted to), `exp` present, a number, not
   past, and at most `max_lifetime_s` (300 s: SMART "no more than five minutes in the future") ahead;
   `jti` present; `nbf`/`iat`, when present, not in the future;
6. `jti` replay: a (client, jti) pair seen before within its assertion's lifetime is refused
   (SMART: "check that the jti value has not been previously encountered for the given iss within
   the maximum allowed authentication JWT lifetime"). Pairs are kept until their `exp` passes.

JWKS by URL: fetched with an `httpx.AsyncClient` over an injected transport (in-process in virtual
mode, sockets in real mode), timeouts from the injected clock, cached per the response's
`Cache-Control: max-age` (SMART: "JWKS caching must follow the client's Cache-Control"), `no-store`
/ `no-cache` meaning not cached, `default_ttl_s` when the header says nothing.

Hand-written around joserfc rather than delegated to an OAuth server library (authlib's
`JWTBearerClientAssertion`): those read the system clock and resolve keys synchronously, which breaks
the two-clock rule and cannot fetch a JWKS through the lab's transport.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, Key, RSAKey
from joserfc.jws import extract_compact

from integrations.clock import Clock

#: SMART backend-services.md: the algorithms a server must be able to validate (at least one of).
ALGORITHMS = ("RS384", "ES384")
#: SMART: `exp` "no more than five minutes in the future".
MAX_LIFETIME_S = 300
_KTY_FOR_ALG = {"RS384": "RSA", "ES384": "EC"}
_CURVE_FOR_ALG = {"ES384": "P-384"}
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
#: Largest assertion accepted: a JWT with a big RSA signature is well under this.
MAX_ASSERTION_BYTES = 16_384


class InvalidClientAssertion(Exception):
    """The client assertion was refused; `reason` is safe to log and to send (no assertion content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySource(Protocol):
    """The registered clients' static public keys (`simulators.admin.clients.ClientRegistry`)."""

    def get(self, client_id: str) -> object | None: ...

    def public_keys(self, client_id: str) -> list[dict[str, Any]]: ...


@dataclass(slots=True)
class _CachedJwks:
    keys: list[dict[str, Any]]
    fetched_at: float
    expires_at: float


class JwksFetcher:
    """Fetches clients' JWKS documents by URL through an injected transport; caches per Cache-Control."""

    def __init__(self, clock: Clock, transport: httpx.AsyncBaseTransport | None = None, *,
                 default_ttl_s: float = 300.0, timeout_s: float = 10.0) -> None:
        self._clock = clock
        self._transport = transport
        self.default_ttl_s = default_ttl_s
        self.timeout_s = timeout_s
        self._cache: dict[str, _CachedJwks] = {}
        self.fetches = 0  # how many HTTP fetches were made (tests, diagnostics)

    def __repr__(self) -> str:
        return f"JwksFetcher(cached={len(self._cache)}, fetches={self.fetches})"

    def clear(self) -> None:
        self._cache.clear()

    async def keys(self, url: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The JWKS at `url`: from the cache while fresh (unless `refresh`), else fetched."""
        now = self._clock.monotonic()
        cached = self._cache.get(url)
        if cached is not None and not refresh and now < cached.expires_at:
            return cached.keys
        keys, ttl = await self._fetch(url)
        self._cache[url] = _CachedJwks(keys=keys, fetched_at=now, expires_at=now + ttl)
        return keys

    async def _fetch(self, url: str) -> tuple[list[dict[str, Any]], float]:
        self.fetches += 1
        owned = self._transport is None  # an injected transport is the caller's to close, not ours
        transport = httpx.AsyncHTTPTransport() if self._transport is None else self._transport
        client = httpx.AsyncClient(transport=transport, timeout=None, follow_redirects=False, trust_env=False)
        try:
            async with self._clock.timeout(self.timeout_s):
                response = await client.get(url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, TimeoutError, ValueError):
            raise InvalidClientAssertion("the client's JWKS URL could not be fetched") from None
        finally:
            if owned:
                await client.aclose()
        if response.status_code != 200:
            raise InvalidClientAssertion(f"the client's JWKS URL answered HTTP {response.status_code}")
        try:
            document = json.loads(response.content)
        except ValueError:
            raise InvalidClientAssertion("the client's JWKS URL did not return JSON") from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise InvalidClientAssertion("the client's JWKS URL did not return a JWK Set")
        return keys, _ttl(response.headers.get("cache-control"), self.default_ttl_s)


def _ttl(cache_control: str | None, default: float) -> float:
    if cache_control is None:
        return default
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else default


class JtiCache:
    """(client, jti) pairs seen within their assertions' lifetimes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}  # -> exp (wall-clock seconds since the epoch)

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, client_id: str, jti: str) -> bool:
        self._purge()
        return (client_id, jti) in self._seen

    def remember(self, client_id: str, jti: str, exp: float) -> None:
        self._seen[(client_id, jti)] = exp

    def clear(self) -> None:
        self._seen.clear()

    def _purge(self) -> None:
        now = self._clock.now().timestamp()
        if any(exp <= now for exp in self._seen.values()):
            self._seen = {pair: exp for pair, exp in self._seen.items() if exp > now}


def _jwk_fits(jwk: Mapping[str, Any], kid: str, alg: str) -> bool:
    if jwk.get("kid") != kid or jwk.get("kty") != _KTY_FOR_ALG[alg]:
        return False
    if jwk.get("alg") not in (None, alg):
        return False
    if jwk.get("use") not in (None, "sig"):
        return False
    curve = _CURVE_FOR_ALG.get(alg)
    return curve is None or jwk.get("crv") == curve


def _import(jwk: Mapping[str, Any], alg: str) -> Key:
    public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    try:
        if alg == "RS384":
            return RSAKey.import_key(public)
        return ECKey.import_key(public)
    except (JoseError, ValueError, TypeError):
        raise InvalidClientAssertion("the registered key for this kid is not a valid JWK") from None


class AssertionVerifier:
    """Checks client assertions; see the module docstring for every rule."""

    def __init__(self, clock: Clock, keys: KeySource, *, jwks_urls: Callable[[str], str | None] | None = None,
                 fetcher: JwksFetcher | None = None, jtis: JtiCache | None = None,
                 max_lifetime_s: float = MAX_LIFETIME_S, leeway_s: int = 0, require_typ: bool = True,
                 algorithms: Collection[str] = ALGORITHMS) -> None:
        unknown = set(algorithms) - set(ALGORITHMS)
        if unknown:
            raise ValueError(f"unsupported algorithms {sorted(unknown)} (supported: {ALGORITHMS})")
        self._clock = clock
        self._keys = keys
        self._jwks_urls = jwks_urls or (lambda client_id: None)
        self.fetcher = fetcher if fetcher is not None else JwksFetcher(clock)
        self.jtis = jtis if jtis is not None else JtiCache(clock)
        self.max_lifetime_s = max_lifetime_s
        self.leeway_s = leeway_s
        self.require_typ = require_typ
        self.algorithms = tuple(algorithms)

    def __repr__(self) -> str:
        return f"AssertionVerifier(algorithms={self.algorithms!r}, max_lifetime_s={self.max_lifetime_s!r})"

    async def verify(self, assertion: str, audiences: Collection[str]) -> str:
        """The client id the assertion authenticates, or `InvalidClientAssertion`."""
        header, unverified = self._parse(assertion)
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidClientAssertion(f"alg must be one of {', '.join(self.algorithms)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidClientAssertion("the kid header is required")
        if self.require_typ and header.get("typ") != "JWT":
            raise InvalidClientAssertion("the typ header must be JWT")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or not client_id or self._keys.get(client_id) is None:
            raise InvalidClientAssertion("iss is not a registered client")
        if unverified.get("sub") != client_id:
            raise InvalidClientAssertion("sub must equal iss (the client id)")
        key = await self._key(client_id, kid, alg, header.get("jku"))
        try:
            token = jwt.decode(assertion, key, algorithms=[alg])
        except JoseError:
            raise InvalidClientAssertion("the signature does not verify with the registered key") from None
        claims = token.claims
        self._check_claims(claims, client_id, audiences)
        jti = claims["jti"]
        if self.jtis.seen(client_id, jti):
            raise InvalidClientAssertion("jti was already used (replayed assertion)")
        self.jtis.remember(client_id, jti, float(claims["exp"]))
        return client_id

    # -- steps -------------------------------------------------------------------------------------

    def _parse(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if not assertion or len(assertion) > MAX_ASSERTION_BYTES or assertion.count(".") != 2:
            raise InvalidClientAssertion("client_assertion is not a JWS compact serialization")
        try:
            obj = extract_compact(assertion.encode("ascii"))
            payload = json.loads(obj.payload or b"")
        except (JoseError, ValueError, UnicodeError):
            raise InvalidClientAssertion("client_assertion is not a well-formed JWT") from None
        if not isinstance(payload, dict):
            raise InvalidClientAssertion("the JWT payload is not a JSON object")
        return dict(obj.headers()), payload

    async def _key(self, client_id: str, kid: str, alg: str, jku: object) -> Key:
        url = self._jwks_urls(client_id)
        if jku is not None and jku != url:
            raise InvalidClientAssertion("jku does not match the client's registered JWKS URL")
        candidates = [k for k in self._keys.public_keys(client_id) if _jwk_fits(k, kid, alg)]
        if url is not None and not candidates:
            fetched = await self.fetcher.keys(url)
            candidates = [k for k in fetched if _jwk_fits(k, kid, alg)]
            if not candidates:  # the client may have rotated: look once more, past the cache
                fetched = await self.fetcher.keys(url, refresh=True)
                candidates = [k for k in fetched if _jwk_fits(k, kid, alg)]
        if not candidates:
            raise InvalidClientAssertion("no registered key matches the kid and alg")
        if len(candidates) > 1:
            raise InvalidClientAssertion("more than one registered key matches the kid and alg")
        return _import(candidates[0], alg)

    def _check_claims(self, claims: dict[str, Any], client_id: str, audiences: Collection[str]) -> None:
        now = self._clock.now().timestamp()
        registry = jwt.JWTClaimsRegistry(
            now=int(now), leeway=self.leeway_s,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "values": list(audiences)},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except MissingClaimError as exc:
            raise InvalidClientAssertion(f"missing claim(s): {exc.claim}") from None
        except ExpiredTokenError:
            raise InvalidClientAssertion("the assertion has expired (exp is past)") from None
        except InvalidClaimError as exc:
            if exc.claim == "aud":
                raise InvalidClientAssertion("aud must be the token endpoint URL") from None
            raise InvalidClientAssertion(f"invalid claim {exc.claim}") from None
        if claims["exp"] > now + self.max_lifetime_s + self.leeway_s:
            raise InvalidClientAssertion(f"exp is more than {self.max_lifetime_s:g} s in the future")
