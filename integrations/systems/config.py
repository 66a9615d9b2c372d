"""Typed configuration of the systems registry: which EHR systems, where, how to authenticate, pool limits.

Runbook `004_bc3882054056792c.txt` ("Settings File Configuration") configures systems as a dict of
dicts (`EHR_SYSTEMS = {"epic_sandbox": {"vendor": ..., "base_url": ..., "client_id": ...}}`); here the
same facts are pydantic models that refuse anything wrong before a connection is made
(`load_registry_config` turns pydantic's error into `ConfigError`, naming each field, never its value):

- `id` a lower-case slug, unique in the registry; `vendor` one of the four the lab simulates;
- `base_url` the FHIR base and `auth.token_url`: absolute URLs without query, fragment or user info
  (credentials never travel in a URL), `https` unless the host is loopback or a `.test` host (the lab's
  simulators; runbook `002_437ee203264dfa64.txt §10.1`: "TLS 1.2+ for all traffic");
- the client authentication a vendor accepts (`SUPPORTED_AUTH`, from `reference/vendors.md`): Epic
  SMART Backend Services `private_key_jwt` (§1), Cerner HTTP Basic or a JWT (§2), Medplum all three
  (§3), Allscripts `client_secret` in the form (§4);
- secrets as `SecretStr` (masked in repr, never echoed in errors); a client id or secret that is
  empty or a placeholder copied from the runbook (`your_client_id`, `changeme`) is refused; a
  private key must parse as a private key of the algorithm's type;
- `limits` (`PoolLimits`): httpx's `Limits` per system, `max_keepalive_connections <= max_connections`;
- `rate_limit` (`RateLimitSettings`): the client-side limit the system's client throttles itself to
  (`integrations.fhir.ratelimit`). Left out, the vendor's default (runbook 004 "Rate Limiting": Epic
  600/h, Cerner 10,000/h; none for Medplum, nor for Allscripts, whose limit "varies by agreement");
  `requests` (+ `window_s`, default one hour) sets one, `max_wait_s` bounds a call's wait, `enabled:
  false` turns it off.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Literal

import httpx
from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from integrations.fhir.config import is_placeholder, secret_problems, url_problems
from integrations.fhir.ratelimit import VENDOR_RATE_LIMITS, RateLimit
from integrations.systems.errors import ConfigError, ConfigProblem


class Vendor(StrEnum):
    EPIC = "epic"
    CERNER = "cerner"
    MEDPLUM = "medplum"
    ALLSCRIPTS = "allscripts"


AuthMethod = Literal["client_secret_post", "client_secret_basic", "private_key_jwt"]

#: Client authentication each vendor's token endpoint accepts (reference/vendors.md §1-§4).
SUPPORTED_AUTH: dict[Vendor, frozenset[str]] = {
    Vendor.EPIC: frozenset({"private_key_jwt"}),  # §1 Backend Services: client_credentials + JWT assertion
    Vendor.CERNER: frozenset({"client_secret_basic", "private_key_jwt"}),  # §2 system account token
    Vendor.MEDPLUM: frozenset({"client_secret_post", "client_secret_basic", "private_key_jwt"}),  # §3
    Vendor.ALLSCRIPTS: frozenset({"client_secret_post"}),  # §4 "client_secret in the form"
}

_SLUG = r"^[a-z][a-z0-9_-]{0,62}$"


def _not_placeholder(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if is_placeholder(value):
        raise ValueError(f"{what} is a placeholder, not a real value")
    return value


def _absolute_url(value: str, what: str) -> str:
    """The URL without its trailing slash, if `integrations.fhir.config.url_problems` finds nothing wrong
    (absolute http(s), no credentials, query or fragment, https outside the lab)."""
    problems = url_problems(what, value)
    if problems:
        raise ValueError("; ".join(problems))
    return value.rstrip("/")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class PoolLimits(_Model):
    """Connection-pool limits of one system (httpx's `Limits`)."""

    max_connections: int = Field(default=10, ge=1, description="requests in flight to the system at once")
    max_keepalive_connections: int = Field(default=5, ge=0, description="idle connections kept open")
    keepalive_expiry_s: float = Field(default=5.0, ge=0, description="how long an idle connection is kept")

    @model_validator(mode="after")
    def _keepalive_within_max(self) -> PoolLimits:
        if self.max_keepalive_connections > self.max_connections:
            raise ValueError("max_keepalive_connections must not exceed max_connections")
        return self

    def to_httpx(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self.max_connections,
                            max_keepalive_connections=self.max_keepalive_connections,
                            keepalive_expiry=self.keepalive_expiry_s)


class RateLimitSettings(_Model):
    """A system's client-side rate limit; `requests` left out means the vendor's default (module docstring)."""

    enabled: bool = True
    requests: int | None = Field(default=None, ge=1, description="per window; None: the vendor's default")
    window_s: float = Field(default=3600.0, gt=0, description="with requests: the window they are counted in")
    max_wait_s: float | None = Field(default=None, ge=0, description="refuse (ClientThrottled) beyond this wait")

    def resolve(self, vendor: str) -> RateLimit | None:
        """The limit for a system of `vendor` (None: no client-side limit)."""
        if not self.enabled:
            return None
        if self.requests is not None:
            return RateLimit(requests=self.requests, window_s=self.window_s, max_wait_s=self.max_wait_s)
        default = VENDOR_RATE_LIMITS.get(vendor)
        if default is None:
            return None
        return RateLimit(requests=default.requests, window_s=default.window_s, max_wait_s=self.max_wait_s)


class ClientSecretAuth(_Model):
    """OAuth client credentials with a shared secret, in the form (`client_secret_post`) or HTTP Basic."""

    method: Literal["client_secret_post", "client_secret_basic"]
    token_url: str
    client_id: str
    client_secret: SecretStr
    scope: str | None = None

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return _absolute_url(value, "token_url")

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return _not_placeholder(value, "client_id")

    @field_validator("client_secret")
    @classmethod
    def _client_secret(cls, value: SecretStr) -> SecretStr:
        problems = secret_problems("client_secret", value.get_secret_value())
        if problems:
            raise ValueError("; ".join(problems))
        return value


class PrivateKeyJwtAuth(_Model):
    """SMART Backend Services: a JWT client assertion signed with `private_key` (PEM) under `key_id`."""

    method: Literal["private_key_jwt"]
    token_url: str
    client_id: str
    private_key: SecretStr
    key_id: str = Field(min_length=1)
    algorithm: Literal["RS384", "ES384"] = "RS384"
    assertion_lifetime_s: float = Field(default=240.0, gt=0, le=300, description="SMART: exp at most 5 min ahead")
    scope: str | None = None

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return _absolute_url(value, "token_url")

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return _not_placeholder(value, "client_id")

    @model_validator(mode="after")
    def _key_parses(self) -> PrivateKeyJwtAuth:
        self.signing_key()
        return self

    def signing_key(self) -> RSAKey | ECKey:
        """The private key, parsed; `ValueError` (naming no key material) if it is not one for `algorithm`."""
        pem = self.private_key.get_secret_value().encode()
        try:
            key: RSAKey | ECKey = RSAKey.import_key(pem) if self.algorithm == "RS384" else ECKey.import_key(pem)
        except Exception:  # joserfc raises ValueError or its own JoseError subclasses
            raise ValueError(f"private_key is not a PEM key usable for {self.algorithm}") from None
        if not key.is_private:
            raise ValueError("private_key is a public key; a client assertion is signed with a private key")
        if isinstance(key, ECKey) and key.curve_name != "P-384":
            raise ValueError("ES384 needs an EC key on curve P-384")
        return key


AuthConfig = Annotated[ClientSecretAuth | PrivateKeyJwtAuth, Field(discriminator="method")]


class SystemConfig(_Model):
    """One configured EHR system."""

    id: str = Field(pattern=_SLUG, description="the registry's name for it, e.g. 'epic_prod'")
    vendor: Vendor
    base_url: str = Field(description="the FHIR base, e.g. https://host/api/FHIR/R4")
    auth: AuthConfig
    limits: PoolLimits = PoolLimits()
    rate_limit: RateLimitSettings = RateLimitSettings()
    attempt_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _absolute_url(value, "base_url")

    @model_validator(mode="after")
    def _vendor_accepts_auth(self) -> SystemConfig:
        accepted = SUPPORTED_AUTH[self.vendor]
        if self.auth.method not in accepted:
            raise ValueError(f"{self.vendor.value} does not accept {self.auth.method} client authentication "
                             f"(accepted: {', '.join(sorted(accepted))})")
        return self

    def client_rate_limit(self) -> RateLimit | None:
        """The limit the system's client throttles itself to (None: no client-side limit)."""
        return self.rate_limit.resolve(self.vendor.value)


class RegistryConfig(_Model):
    """Every configured system, in priority order (the first ones are tried first as failover targets)."""

    systems: tuple[SystemConfig, ...]

    @field_validator("systems")
    @classmethod
    def _unique_ids(cls, systems: tuple[SystemConfig, ...]) -> tuple[SystemConfig, ...]:
        if not systems:
            raise ValueError("at least 1 system must be configured")
        seen: set[str] = set()
        for system in systems:
            if system.id in seen:
                raise ValueError(f"system id {system.id!r} is configured twice")
            seen.add(system.id)
        return systems


def load_registry_config(data: Mapping[str, object]) -> RegistryConfig:
    """Validate a configuration mapping (from YAML, JSON, settings); `ConfigError` lists every problem."""
    try:
        return RegistryConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc) from None


def config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """pydantic's errors as `ConfigError`: dotted field paths and messages, never the input values."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(part) for part in error["loc"] if not _is_union_tag(part))
        field = ".".join(p for p in (prefix, path) if p) or "(root)"
        problems.append(ConfigProblem(field=field, reason=error["msg"].removeprefix("Value error, ")))
    return ConfigError(tuple(problems))


def _is_union_tag(part: object) -> bool:
    # a discriminated union adds the tag to the location (`auth.private_key_jwt.private_key`)
    return part in ("client_secret_post", "client_secret_basic", "private_key_jwt")
