"""Registered OAuth clients: credentials (secrets and public keys) with rotation overlap, and scopes.

`ClientRegistry` is what every vendor's token endpoint asks "is this client known, is this secret (or
this JWT's key) one of its active credentials, which scopes may it have?". The admin API rotates
credentials at run time: `add_secret` / `add_key` add one, the old ones stay valid until `revoke`
(the overlap a real rotation needs), and `credentials()` lists them without any secret.

Secrets are kept only as SHA-256 digests; `verify_secret` compares the digest of the candidate with
every active digest in constant time (`hmac.compare_digest`, no early exit), and an unknown client
costs the same one comparison as a known one with one secret. Public keys are validated with
joserfc (`JWKRegistry.import_key`); a JWK carrying private material is refused.

Credential ids are drawn from the injected rng (`cred-<12 hex>`), so the same seed and the same
admin calls give the same ids; creation and revocation times come from the injected clock.

`scope_allows(scopes, resource_type, interaction)` implements SMART App Launch scope matching
(reference/vendors.md §5, "Scopes"): v2 `(patient|user|system)/(Type|*).[c][r][u][d][s]` with the
letters in that order (out-of-order or repeated letters make the scope grant nothing, which the spec
allows), v1 `.read` = `.rs`, `.write` = `.cud`, `.*` = `.cruds`. A v2 scope may carry a query
(`patient/Observation.rs?category=laboratory`): the query narrows which resources the scope covers,
which a type-level check cannot see, so such a scope counts for its type and interactions and the
vendor filters results if it models that. Interactions are the SMART letters "c", "r", "u", "d",
"s" or a FHIR interaction name (read, vread, history -> r; search -> s; create -> c; update, patch
-> u; delete -> d).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from integrations.clock import Clock
from simulators.errors import SimulatorError

#: What a client gets when `register` is given no scopes: full system access.
DEFAULT_SCOPES: tuple[str, ...] = ("system/*.cruds",)
#: JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
SMART_LETTERS = "cruds"
CONTEXTS = ("patient", "user", "system")
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_INTERACTION_LETTERS = {
    "c": "c", "r": "r", "u": "u", "d": "d", "s": "s",
    "create": "c", "read": "r", "vread": "r", "history": "r", "search": "s",
    "update": "u", "patch": "u", "delete": "d",
}
_SCOPE = re.compile(r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\."
                    r"(?P<permissions>[a-z*]{1,5})(?:\?(?P<query>.+))?$")

CredentialKind = Literal["secret", "key"]


class ClientError(SimulatorError):
    """A registry operation was refused; the message names the client and never a credential."""


class UnknownClient(ClientError):
    """No client with that id is registered."""


class UnknownCredential(ClientError):
    """The client has no credential with that id."""


class InvalidCredential(ClientError):
    """The secret or JWK given cannot be registered (empty secret, malformed or private JWK)."""


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """One credential of a client, as the admin API lists it: never the secret itself."""

    id: str
    kind: CredentialKind
    created_at: datetime
    revoked_at: datetime | None = None
    kid: str | None = None  # keys only
    kty: str | None = None  # keys only
    alg: str | None = None  # keys only, when the JWK names one

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "kind": self.kind, "active": self.active,
                                   "created_at": _iso(self.created_at),
                                   "revoked_at": None if self.revoked_at is None else _iso(self.revoked_at)}
        if self.kind == "key":
            body.update({"kid": self.kid, "kty": self.kty, "alg": self.alg})
        return body


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A registered client without its credentials (safe to log and to answer)."""

    client_id: str
    scopes: tuple[str, ...]
    tenant: str | None = None
    jwks_url: str | None = None


@dataclass(slots=True)
class _Client:
    info: ClientInfo
    credentials: list[CredentialInfo] = field(default_factory=list)
    digests: dict[str, bytes] = field(default_factory=dict)  # credential id -> SHA-256 of the secret
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # credential id -> public JWK

    def active(self, kind: CredentialKind) -> list[CredentialInfo]:
        return [c for c in self.credentials if c.kind == kind and c.active]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


#: Compared against when the client is unknown, so an unknown client costs one comparison too.
_NO_SECRET = _digest("\x00ehrlab: no such client\x00")


def _public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(jwk, Mapping):
        raise InvalidCredential("a JWK must be a JSON object")
    private = sorted(PRIVATE_JWK_MEMBERS & set(jwk))
    if private:
        raise InvalidCredential(f"a public JWK must not carry private members ({', '.join(private)})")
    try:
        key = JWKRegistry.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidCredential(f"invalid JWK: {exc.__class__.__name__}") from None
    if key.is_private:
        raise InvalidCredential("a public JWK must not carry private material")
    return dict(jwk)


class ClientRegistry:
    """Clients by id, each with active and revoked credentials and its allowed scopes."""

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng
        self._clients: dict[str, _Client] = {}

    def __repr__(self) -> str:
        return f"ClientRegistry(clients={sorted(self._clients)!r})"

    # -- registration ------------------------------------------------------------------------

    def register(self, client_id: str, *, secret: str | None = None, jwks: Mapping[str, Any] | None = None,
                 scopes: Iterable[str] = DEFAULT_SCOPES, tenant: str | None = None,
                 jwks_url: str | None = None) -> None:
        """Add (or replace) a client. `jwks` is a JWK Set (`{"keys": [...]}`) or a single JWK."""
        if not client_id:
            raise ClientError("client_id must not be empty")
        client = _Client(ClientInfo(client_id=client_id, scopes=tuple(scopes), tenant=tenant, jwks_url=jwks_url))
        self._clients[client_id] = client
        if secret is not None:
            self.add_secret(client_id, secret)
        if jwks is not None:
            keys = jwks.get("keys") if "keys" in jwks else [jwks]
            if not isinstance(keys, list):
                raise InvalidCredential("jwks.keys must be a list")
            for jwk in keys:
                self.add_key(client_id, jwk)

    def set_scopes(self, client_id: str, scopes: Iterable[str]) -> None:
        client = self._client(client_id)
        client.info = replace(client.info, scopes=tuple(scopes))

    def add_secret(self, client_id: str, secret: str) -> str:
        """Add a secret; every older active secret stays valid until revoked. Returns its credential id."""
        if not secret:
            raise InvalidCredential("a secret must not be empty")
        client = self._client(client_id)
        credential = CredentialInfo(id=self._new_id(), kind="secret", created_at=self._clock.now())
        client.credentials.append(credential)
        client.digests[credential.id] = _digest(secret)
        return credential.id

    def generate_secret(self, client_id: str, length: int = 40) -> tuple[str, str]:
        """Add a secret drawn from the rng; returns (credential id, secret). The secret is not kept."""
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        self._client(client_id)  # fail before drawing
        secret = "".join(self._rng.choice(alphabet) for _ in range(length))
        return self.add_secret(client_id, secret), secret

    def add_key(self, client_id: str, jwk: Mapping[str, Any]) -> str:
        """Add a public JWK; older keys stay valid until revoked. Returns its credential id."""
        client = self._client(client_id)
        public = _public_jwk(jwk)
        credential = CredentialInfo(id=self._new_id(), kind="key", created_at=self._clock.now(),
                                    kid=_opt_str(public.get("kid")), kty=_opt_str(public.get("kty")),
                                    alg=_opt_str(public.get("alg")))
        client.credentials.append(credential)
        client.keys[credential.id] = public
        return credential.id

    def revoke(self, client_id: str, credential_id: str) -> None:
        """Revoke one credential (idempotent for an already revoked one)."""
        client = self._client(client_id)
        for index, credential in enumerate(client.credentials):
            if credential.id == credential_id:
                if credential.active:
                    client.credentials[index] = replace(credential, revoked_at=self._clock.now())
                    client.digests.pop(credential_id, None)
                    client.keys.pop(credential_id, None)
                return
        raise UnknownCredential(f"client {client_id!r} has no credential {credential_id!r}")

    def remove(self, client_id: str) -> None:
        self._client(client_id)
        del self._clients[client_id]

    # -- queries -----------------------------------------------------------------------------

    def verify_secret(self, client_id: str, secret: str) -> bool:
        """True if `secret` is one of the client's active secrets (constant time over all of them)."""
        candidate = _digest(secret)
        client = self._clients.get(client_id)
        digests = [_NO_SECRET] if client is None else list(client.digests.values())
        matched = False
        for digest in digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched and client is not None

    def public_keys(self, client_id: str) -> list[dict[str, Any]]:
        """The client's active public JWKs, oldest first (empty for an unknown client)."""
        client = self._clients.get(client_id)
        if client is None:
            return []
        return [dict(client.keys[c.id]) for c in client.active("key")]

    def scopes(self, client_id: str) -> list[str]:
        client = self._clients.get(client_id)
        return [] if client is None else list(client.info.scopes)

    def get(self, client_id: str) -> ClientInfo | None:
        client = self._clients.get(client_id)
        return None if client is None else client.info

    def credentials(self, client_id: str) -> list[CredentialInfo]:
        """Every credential of the client, active and revoked, oldest first; never a secret."""
        return list(self._client(client_id).credentials)

    def client_ids(self) -> list[str]:
        return list(self._clients)

    # -- internals ---------------------------------------------------------------------------

    def _client(self, client_id: str) -> _Client:
        client = self._clients.get(client_id)
        if client is None:
            raise UnknownClient(f"no client {client_id!r}")
        return client

    def _new_id(self) -> str:
        return f"cred-{self._rng.getrandbits(48):012x}"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# -- SMART scopes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmartScope:
    """One parsed SMART resource scope."""

    context: str  # patient | user | system
    resource_type: str  # a type or "*"
    permissions: frozenset[str]  # subset of c r u d s
    query: str | None = None

    def covers(self, other: SmartScope) -> bool:
        """True if everything `other` grants, this scope grants too."""
        return (self.context == other.context
                and self.resource_type in ("*", other.resource_type)
                and other.permissions <= self.permissions
                and (self.query is None or self.query == other.query))


def parse_scope(scope: str) -> SmartScope | None:
    """The SMART resource scope `scope` as v2 permissions, or None (not a resource scope, or invalid)."""
    match = _SCOPE.match(scope)
    if match is None:
        return None
    raw = match["permissions"]
    letters = _V1_PERMISSIONS.get(raw)
    if letters is None:
        # v2: letters from "cruds", each at most once, in that order
        positions = [SMART_LETTERS.find(letter) for letter in raw]
        if -1 in positions or positions != sorted(set(positions)):
            return None
        letters = raw
    elif match["query"] is not None:
        return None  # v1 scopes take no query
    return SmartScope(context=match["context"], resource_type=match["type"],
                      permissions=frozenset(letters), query=match["query"])


def interaction_letter(interaction: str) -> str:
    """The SMART letter for a SMART letter or a FHIR interaction name; ValueError for anything else."""
    letter = _INTERACTION_LETTERS.get(str(interaction).lower())
    if letter is None:
        raise ValueError(f"unknown interaction {interaction!r} (use c, r, u, d, s or a FHIR interaction name)")
    return letter


def scope_allows(scopes: Iterable[str], resource_type: str, interaction: str, *,
                 contexts: Collection[str] = CONTEXTS) -> bool:
    """True if one of `scopes` grants `interaction` on `resource_type` in one of `contexts`."""
    letter = interaction_letter(interaction)
    for scope in scopes:
        parsed = parse_scope(scope)
        if (parsed is not None and parsed.context in contexts
                and parsed.resource_type in ("*", resource_type) and letter in parsed.permissions):
            return True
    return False


def narrow_scopes(requested: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The requested resource scopes some allowed scope covers, in request order, without repeats.

    What a token endpoint grants: a request for `system/Patient.read` by a client allowed
    `system/*.cruds` gets `system/Patient.read`; one for `system/Patient.write` by a client allowed
    `system/*.rs` gets nothing for it. Non-resource scopes (openid, launch, ...) are dropped.
    """
    allowed_parsed = [parsed for parsed in map(parse_scope, allowed) if parsed is not None]
    granted: list[str] = []
    for scope in requested:
        parsed = parse_scope(scope)
        if parsed is not None and scope not in granted and any(a.covers(parsed) for a in allowed_parsed):
            granted.append(scope)
    return granted
