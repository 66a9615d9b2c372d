"""Client credentials, where they come from, and rotation without a restart.

Runbook `000_030ea53f0735abf7.txt §1` ("Epic Credential Rotation") and `002_437ee203264dfa64.txt
§10.2` ("Credential Rotation") both rotate in the same order: generate the new credential at the vendor,
deploy it to the integration, verify, and only then revoke the old one ("Revoke old secret after 24
hours"). 000 §1 restarts the service to pick the new one up; here no restart is needed:

- A `CredentialSource` yields the credentials to use, **newest first**: `StaticCredentials` (set in
  code; `deploy`/`retire` rotate), `CallableCredentials` (any function), and in
  `integrations.fhir.credential_sources` `EnvCredentials` (`MEDPLUM_CLIENT_SECRET` +
  `MEDPLUM_CLIENT_SECRET_PREVIOUS`, `EPIC_PRIVATE_KEY_PATH` + `EPIC_KEY_ID` ...) and `FileCredentials`
  (a JSON file rewritten by a secrets agent). Sources are cheap to read and are re-read before every
  token request, so a rotation is picked up by the next token request.
- `RotatingCredentials` wraps a source for the auth flows: during an overlap (old and new both
  deployed) the new credential is tried first and the old one is the fallback. A credential the vendor
  refuses is marked rejected and skipped; it is tried again after `recheck_after_s` (default 60 s:
  Cerner's "Refresh attempts at intervals lower than one minute may result in throttling",
  reference/vendors.md §2), doubling with every further refusal up to `max_recheck_s` (900 s), or as
  soon as the source stops offering it and offers it again. (One refusal may be a vendor glitch; a
  revoked credential is then asked about a handful of times an hour, not once per call.)
  When every credential on offer is rejected, the auth flow raises `CredentialsRejected` at once,
  without a request: one refusal per credential, not one per call (no retry storm).
- A source that fails to load (file half-written, variable unset) keeps the last good set, with a
  warning; with no good set yet it raises `ConfigurationError`.

Secrets never appear in a repr, a log line, an event or an exception: a credential is named by its
`label` (an environment variable's name, a file entry's label, a key id), never by its value.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from joserfc.jwk import ECKey, RSAKey

from integrations.clock import Clock
from integrations.fhir.auth_errors import ConfigurationError

logger = logging.getLogger(__name__)

Algorithm = Literal["RS384", "ES384"]
SigningKey = RSAKey | ECKey


@dataclass(frozen=True, slots=True, repr=False)
class ClientCredentials:
    """A client id and secret; the secret never appears in a repr or str. `label` names it in events."""

    client_id: str
    client_secret: str
    label: str = ""

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret='***', label={self.label!r})"


@dataclass(frozen=True, slots=True, repr=False)
class SigningKeyCredentials:
    """A client id and the private key its JWT client assertions are signed with (SMART Backend Services)."""

    client_id: str
    key: SigningKey = field(compare=False)
    kid: str
    alg: Algorithm = "ES384"
    label: str = ""

    def __repr__(self) -> str:
        return (f"SigningKeyCredentials(client_id={self.client_id!r}, kid={self.kid!r}, alg={self.alg!r}, "
                f"label={self.label!r})")


Credential = ClientCredentials | SigningKeyCredentials

#: Returns the credentials to use now (one, or several newest first); called before every token request.
CredentialsProvider = Callable[[], Credential | Sequence[Credential]]


@runtime_checkable
class CredentialSource(Protocol):
    """Where credentials come from. `load()` returns them newest first, or raises `ConfigurationError`."""

    def load(self) -> Sequence[Credential]: ...


class StaticCredentials:
    """Credentials held in memory; `deploy` adds a new one in front, `retire` removes one by label."""

    def __init__(self, *credentials: Credential) -> None:
        self._credentials = list(credentials)

    def __repr__(self) -> str:
        return f"StaticCredentials(labels={[c.label for c in self._credentials]!r})"

    def load(self) -> Sequence[Credential]:
        return tuple(self._credentials)

    def deploy(self, credential: Credential) -> None:
        """Offer `credential` first; the others stay as fallbacks (the rotation overlap)."""
        self._credentials.insert(0, credential)

    def retire(self, label: str) -> None:
        """Stop offering the credential labelled `label` (after the vendor revoked it)."""
        self._credentials = [c for c in self._credentials if c.label != label]

    def replace(self, *credentials: Credential) -> None:
        self._credentials = list(credentials)


class CallableCredentials:
    """Credentials from a function, called on every load (e.g. a secrets manager's cached lookup)."""

    def __init__(self, provider: CredentialsProvider, *, vendor: str = "") -> None:
        self._provider = provider
        self._vendor = vendor

    def __repr__(self) -> str:
        return "CallableCredentials()"

    def load(self) -> Sequence[Credential]:
        try:
            loaded = self._provider()
        except Exception as exc:
            # `from None`: the provider's own message might quote the secret.
            raise ConfigurationError(self._vendor, [f"credentials provider failed ({type(exc).__name__})"]) from None
        return (loaded,) if isinstance(loaded, ClientCredentials | SigningKeyCredentials) else tuple(loaded)


@dataclass(frozen=True, slots=True, repr=False)
class Candidate:
    """One credential on offer, with the label events name it by and an identity that holds no secret."""

    credential: Credential
    label: str
    identity: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Candidate(label={self.label!r})"


def _identity(credential: Credential) -> tuple[str, ...]:
    if isinstance(credential, ClientCredentials):
        digest = hashlib.sha256(credential.client_secret.encode("utf-8")).hexdigest()  # in memory only
        return ("secret", credential.client_id, digest)
    return ("key", credential.client_id, credential.kid, credential.alg, credential.key.thumbprint())


def _label(credential: Credential, index: int) -> str:
    if credential.label:
        return credential.label
    if isinstance(credential, SigningKeyCredentials):
        return f"key {credential.kid}"
    return f"{credential.client_id} secret #{index + 1}"


class RotatingCredentials:
    """A credential source with rejection marks; see the module docstring. One event loop uses it."""

    def __init__(self, source: CredentialSource, clock: Clock, *, recheck_after_s: float = 60.0,
                 max_recheck_s: float = 900.0, vendor: str = "") -> None:
        if not 0 <= recheck_after_s <= max_recheck_s:
            raise ValueError("need 0 <= recheck_after_s <= max_recheck_s")
        self.source = source
        self.recheck_after_s = recheck_after_s
        self.max_recheck_s = max_recheck_s
        self._clock = clock
        self._vendor = vendor
        self._offered: list[Candidate] = []
        self._loaded = False
        # identity -> (monotonic time it may be tried again, consecutive refusals)
        self._rejected: dict[tuple[str, ...], tuple[float, int]] = {}

    def __repr__(self) -> str:
        return f"RotatingCredentials(labels={self.labels()!r}, rejected={len(self._rejected)})"

    @classmethod
    def wrap(cls, credentials: CredentialsProvider | CredentialSource | RotatingCredentials, clock: Clock, *,
             vendor: str = "") -> RotatingCredentials:
        """`credentials` as a `RotatingCredentials` (a plain function becomes a `CallableCredentials`)."""
        if isinstance(credentials, RotatingCredentials):
            return credentials
        if isinstance(credentials, CredentialSource):
            return cls(credentials, clock, vendor=vendor)
        return cls(CallableCredentials(credentials, vendor=vendor), clock, vendor=vendor)

    def reload(self) -> list[Candidate]:
        """Read the source again; on failure keep the last good set (or raise if there is none)."""
        try:
            loaded = list(self.source.load())
            if not loaded:
                raise ConfigurationError(self._vendor, ["the credentials source offered no credential"])
        except ConfigurationError as exc:
            if not self._loaded:
                raise
            logger.warning("%s credentials could not be reloaded (%s); keeping the last good set",
                           self._vendor or "vendor", "; ".join(exc.problems))
            return list(self._offered)
        offered = [Candidate(c, _label(c, i), _identity(c)) for i, c in enumerate(loaded)]
        identities = {c.identity for c in offered}
        # A credential no longer offered forgets its mark: offered again later, it is tried again.
        self._rejected = {k: v for k, v in self._rejected.items() if k in identities}
        if self._loaded and [c.label for c in offered] != [c.label for c in self._offered]:
            logger.info("%s credentials now on offer: %s", self._vendor or "vendor", ", ".join(self.labels(offered)))
        self._offered, self._loaded = offered, True
        return list(offered)

    def candidates(self) -> list[Candidate]:
        """Reload, then the credentials worth trying now, newest first (rejected ones skipped until rechecked)."""
        now = self._clock.monotonic()
        return [c for c in self.reload() if c.identity not in self._rejected or now >= self._rejected[c.identity][0]]

    def reject(self, candidate: Candidate) -> float:
        """Mark `candidate` refused; returns the seconds until it is tried again."""
        refusals = self._rejected.get(candidate.identity, (0.0, 0))[1] + 1
        delay = min(self.recheck_after_s * 2.0 ** min(refusals - 1, 30), self.max_recheck_s)
        self._rejected[candidate.identity] = (self._clock.monotonic() + delay, refusals)
        return delay

    def next_recheck(self) -> float | None:
        """Seconds until the next rejected credential on offer may be tried again (None: none is rejected)."""
        times = [self._rejected[c.identity][0] for c in self._offered if c.identity in self._rejected]
        return None if not times else max(0.0, min(times) - self._clock.monotonic())

    def accept(self, candidate: Candidate) -> None:
        self._rejected.pop(candidate.identity, None)

    def rejected_labels(self) -> list[str]:
        return [c.label for c in self._offered if c.identity in self._rejected]

    def labels(self, offered: Sequence[Candidate] | None = None) -> list[str]:
        return [c.label for c in (self._offered if offered is None else offered)]
