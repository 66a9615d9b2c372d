"""The resilience layer's errors: a branch of the connector's tree, so a caller that handles
`ConnectorError` (the lab's runner, the multi-system layer) handles these too.

```
ConnectorError                      (integrations.fhir.errors)
└── ResilienceError                 root of this package's failures
    ├── EhrUnavailable              a read found the provider down and nothing cached (runbook 000 §8)
    └── FeatureDisabled             a feature flag refused the operation (runbook 000 §3)
        └── WritesDisabled          `<vendor>_fhir_write` is off for this caller; nothing was sent
```

Misuse is not in the tree: an unknown flag name raises `UnknownFeatureFlag` (a `LookupError`, and an
`integrations.errors.IntegrationError` so a caller can tell it from a bug), bad configuration a
`ValueError`, as in the rest of `integrations`.

Messages carry the vendor and the flag name; never a patient identifier, a user id or a resource.
"""

from __future__ import annotations

from integrations.errors import IntegrationError
from integrations.fhir.errors import ConnectorError


class ResilienceError(ConnectorError):
    """Root of this package's failures."""


class EhrUnavailable(ResilienceError):
    """The read could not be served, "EHR temporarily unavailable" (runbook 000_030ea53f0735abf7.txt §8): the
    provider could not answer (breaker open, provider down, reads disabled) and nothing fresh was cached.
    `retry_after_s` is the breaker's time left in OPEN, when that is why."""

    @property
    def retryable(self) -> bool:
        return True


class FeatureDisabled(ResilienceError):
    """A feature flag is off for this caller. `flag` names it."""

    def __init__(self, message: str, *, vendor: str, flag: str, correlation_id: str | None = None) -> None:
        self.flag = flag
        super().__init__(message, vendor=vendor, correlation_id=correlation_id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vendor={self.vendor!r}, flag={self.flag!r})"


class WritesDisabled(FeatureDisabled):
    """Writes are switched off (`<vendor>_fhir_write`, runbook 000 §3 "Disable write operations")."""


class UnknownFeatureFlag(IntegrationError, LookupError):
    """No flag by this name was registered (a typo must not read as "disabled")."""

    def __init__(self, flag: str, known: tuple[str, ...]) -> None:
        self.flag = flag
        self.known = known
        super().__init__(f"unknown feature flag {flag!r} (registered: {', '.join(known) or 'none'})")
