"""Feature flags: each vendor's read and write switches, per-user overrides and batch updates
(runbook `000_030ea53f0735abf7.txt §3` "Feature Flag Management", `§8` "Emergency Procedures").

Names follow the runbook: `epic_fhir_write` gates writes and `epic_fhir_read_only` gates reads
(§8 "Disable All Epic Features" turns both off), and every vendor has the same pair
(`write_flag(vendor)`, `read_flag(vendor)`). A user's override wins over the global value
(§3 `set_user_override("user_123", "epic_fhir_write", True)`). `update_many` is §8's batch update:
every name is checked before any flag changes, so a typo leaves all flags as they were.

Every change is a `FeatureFlagChanged` event (flag, new and previous value, scope, batch size); a
no-op update emits nothing. Events and reprs name users only by a pseudonym (`user_ref`, a truncated
SHA-256 of the user id): enough to tell overrides apart in a journal, without the id itself.

Staged recovery (reads first, then writes) is a sequence of these changes: see
`integrations.resilience.recovery`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from integrations.events import EventListener, FeatureFlagChanged, ignore_event
from integrations.resilience.errors import UnknownFeatureFlag


def write_flag(vendor: str) -> str:
    """`epic` -> `epic_fhir_write` (runbook 000 §3)."""
    return f"{vendor}_fhir_write"


def read_flag(vendor: str) -> str:
    """`epic` -> `epic_fhir_read_only` (runbook 000 §8): while it is off, reads come only from the cache."""
    return f"{vendor}_fhir_read_only"


def user_ref(user: str) -> str:
    """The pseudonym events carry instead of a user id."""
    return "u-" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    """One entry of a batch update: `{"feature": ..., "enabled": ...}` in runbook 000 §8."""

    feature: str
    enabled: bool


class FeatureFlags:
    """Named on/off switches with per-user overrides; see the module docstring."""

    def __init__(self, flags: Mapping[str, bool] | None = None, *, listener: EventListener = ignore_event) -> None:
        self._flags: dict[str, bool] = dict(flags or {})
        self._overrides: dict[tuple[str, str], bool] = {}  # (user, flag) -> enabled
        self._listener = listener
        self._observers: list[Callable[[FeatureFlagChanged], None]] = []

    @classmethod
    def for_vendors(cls, vendors: Iterable[str], *, enabled: bool = True,
                    listener: EventListener = ignore_event) -> FeatureFlags:
        """The read and write flags of every vendor, all `enabled`."""
        flags: dict[str, bool] = {}
        for vendor in vendors:
            flags[read_flag(vendor)] = enabled
            flags[write_flag(vendor)] = enabled
        return cls(flags, listener=listener)

    def __repr__(self) -> str:
        return f"FeatureFlags(flags={len(self._flags)}, overrides={len(self._overrides)})"

    def subscribe(self, observer: Callable[[FeatureFlagChanged], None]) -> None:
        """Call `observer` after the listener on every change (the fallback re-evaluates on it)."""
        self._observers.append(observer)

    def register(self, flag: str, enabled: bool = True) -> None:
        """Add a flag (configuration, not a change: no event)."""
        if flag in self._flags:
            raise ValueError(f"feature flag {flag!r} is already registered")
        self._flags[flag] = enabled

    def is_enabled(self, flag: str, user: str | None = None) -> bool:
        """The user's override if there is one, else the flag's global value."""
        self._check(flag)
        if user is not None:
            override = self._overrides.get((user, flag))
            if override is not None:
                return override
        return self._flags[flag]

    def update(self, flag: str, enabled: bool) -> None:
        """Set a flag's global value (runbook 000 §3 `update_feature_flag`)."""
        self.update_many([FlagUpdate(flag, enabled)])

    def update_many(self, updates: Sequence[FlagUpdate]) -> None:
        """Apply a batch (runbook 000 §8 `/api/admin/features/batch`): all names are checked first."""
        seen: set[str] = set()
        for update in updates:
            self._check(update.feature)
            if update.feature in seen:
                raise ValueError(f"feature flag {update.feature!r} appears twice in one batch")
            seen.add(update.feature)
        changes = [FeatureFlagChanged(flag=u.feature, enabled=u.enabled, previous=self._flags[u.feature],
                                      scope="global", user_ref=None, batch_size=len(updates))
                   for u in updates if self._flags[u.feature] is not u.enabled]
        for update in updates:  # the whole batch is applied before anyone hears of it
            self._flags[update.feature] = update.enabled
        for change in changes:
            self._emit(change)

    def set_user_override(self, user: str, flag: str, enabled: bool) -> None:
        """This user sees `enabled` whatever the global value (runbook 000 §3 "Per-User Override")."""
        self._check(flag)
        previous = self._overrides.get((user, flag))
        if previous is enabled:
            return
        self._overrides[(user, flag)] = enabled
        self._emit(FeatureFlagChanged(flag=flag, enabled=enabled, previous=previous, scope="user",
                                      user_ref=user_ref(user), batch_size=1))

    def clear_user_override(self, user: str, flag: str) -> None:
        """The user follows the global value again."""
        self._check(flag)
        previous = self._overrides.pop((user, flag), None)
        if previous is not None:
            self._emit(FeatureFlagChanged(flag=flag, enabled=None, previous=previous, scope="user",
                                          user_ref=user_ref(user), batch_size=1))

    def snapshot(self) -> dict[str, bool]:
        """Every flag's global value, by name (runbook 000 appendix "List active feature flags")."""
        return dict(sorted(self._flags.items()))

    def override_count(self, flag: str) -> int:
        """How many users have an override of `flag` (never who)."""
        self._check(flag)
        return sum(1 for (_, name) in self._overrides if name == flag)

    def _emit(self, event: FeatureFlagChanged) -> None:
        self._listener(event)
        for observer in self._observers:
            observer(event)

    def _check(self, flag: str) -> None:
        if flag not in self._flags:
            raise UnknownFeatureFlag(flag, tuple(sorted(self._flags)))
