"""Signing keys and client assertions for the vendor tests (generated once per test session)."""

from __future__ import annotations

import functools
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

CLIENT_ID = "epic-backend-app"


@functools.cache
def rsa_key(kid: str = "rsa-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@functools.cache
def ec_key(kid: str = "ec-1", crv: str = "P-384") -> ECKey:
    return ECKey.generate_key(crv, parameters={"kid": kid})


def public_jwks(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def sign(claims: dict[str, Any], key: RSAKey | ECKey, *, alg: str = "RS384", header: dict[str, Any] | None = None,
         typ: str | None = "JWT") -> str:
    base: dict[str, Any] = {"alg": alg}
    if key.kid is not None:
        base["kid"] = key.kid
    return jwt.encode({**base, **(header or {})}, claims, key, algorithms=[alg], default_type=typ)


def claims(now: float, aud: str, *, client_id: str = CLIENT_ID, jti: str = "jti-1", lifetime: float = 240,
           **extra: Any) -> dict[str, Any]:
    return {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "exp": int(now + lifetime), **extra}


