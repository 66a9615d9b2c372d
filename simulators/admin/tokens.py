"""Access tokens a simulator has issued: opaque values from the rng, lifetimes on the injected clock.

`TokenStore(clock, rng, lifetime_s)` is shared by every vendor's token endpoint (each passes its own
lifetime: Cerner 570 s, Medplum 3600 s, ...; reference/vendors.md §2, §3) and by the admin API,
which forces expiry (`expire`, all tokens or one client's) and revocation (`revoke_client`).

A token is valid from issue until `expires_at` (exclusive) on the clock's monotonic time. Forced
expiry moves `expires_at` to now, so `check` refuses the token while `inspect` still knows it: a
vendor can then answer "token expired" rather than "unknown token", as real servers do. Expired
tokens are forgotten one lifetime after they expired (pruned on `issue`), so a long load run does
not grow the store without bound.

Token values are 64 hex digits drawn from the injected rng: the same seed issues the same tokens.
They never appear in a repr, a log line or an exception.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace

from integrations.clock import Clock


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What a token endpoint hands out."""

    value: str
    expires_in: int  # whole seconds, as `expires_in` in an OAuth token response

    def __repr__(self) -> str:
        return f"IssuedToken(value='***', expires_in={self.expires_in})"


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a token was issued to, for what, and until when (the clock's monotonic time)."""

    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    issued_at: float = 0.0

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


class TokenStore:
    """Issued tokens and their grants. One event loop owns it (not thread-safe)."""

    def __init__(self, clock: Clock, rng: random.Random, lifetime_s: float) -> None:
        if lifetime_s <= 0:
            raise ValueError("lifetime_s must be positive")
        self._clock = clock
        self._rng = rng
        self.lifetime_s = lifetime_s
        self._grants: dict[str, Grant] = {}

    def __repr__(self) -> str:
        return f"TokenStore(lifetime_s={self.lifetime_s:g}, tokens={len(self._grants)})"

    def __len__(self) -> int:
        return len(self._grants)

    def issue(self, client_id: str, scopes: Iterable[str], lifetime_s: float | None = None) -> IssuedToken:
        """A new token for `client_id` with `scopes`, valid for `lifetime_s` (default: the store's)."""
        lifetime = self.lifetime_s if lifetime_s is None else lifetime_s
        if lifetime <= 0:
            raise ValueError("lifetime_s must be positive")
        now = self._clock.monotonic()
        self._prune(now)
        value = f"{self._rng.getrandbits(256):064x}"
        self._grants[value] = Grant(client_id=client_id, scopes=tuple(scopes), expires_at=now + lifetime,
                                    issued_at=now)
        return IssuedToken(value=value, expires_in=int(lifetime))

    def check(self, token: str) -> Grant | None:
        """The token's grant if it is known and has not expired, else None."""
        grant = self._grants.get(token)
        if grant is None or self._clock.monotonic() >= grant.expires_at:
            return None
        return grant

    def inspect(self, token: str) -> Grant | None:
        """The token's grant even if it has expired (None if unknown or revoked)."""
        return self._grants.get(token)

    def expire(self, client_id: str | None = None) -> int:
        """Force every valid token (of `client_id` if given) to expire now; returns how many did."""
        now = self._clock.monotonic()
        expired = 0
        for value, grant in self._grants.items():
            if grant.expires_at > now and (client_id is None or grant.client_id == client_id):
                self._grants[value] = replace(grant, expires_at=now)
                expired += 1
        return expired

    def revoke_client(self, client_id: str) -> int:
        """Forget every token of `client_id` (valid or expired); returns how many were valid."""
        now = self._clock.monotonic()
        revoked = [value for value, grant in self._grants.items() if grant.client_id == client_id]
        valid = sum(1 for value in revoked if self._grants[value].expires_at > now)
        for value in revoked:
            del self._grants[value]
        return valid

    def revoke(self, token: str) -> bool:
        """Forget one token (RFC 7009 revocation, Unity's RetireSecurityToken); True if it was known."""
        return self._grants.pop(token, None) is not None

    def clear(self) -> None:
        self._grants.clear()

    def active(self, client_id: str | None = None) -> int:
        """How many tokens (of `client_id` if given) are valid now."""
        now = self._clock.monotonic()
        return sum(1 for grant in self._grants.values()
                   if grant.expires_at > now and (client_id is None or grant.client_id == client_id))

    def _prune(self, now: float) -> None:
        horizon = now - self.lifetime_s
        if any(grant.expires_at <= horizon for grant in self._grants.values()):
            self._grants = {value: grant for value, grant in self._grants.items() if grant.expires_at > horizon}
