"""Credential checks: runbooks 000_030ea53f0735abf7.txt §1 ("Epic Credential Rotation") and
002_437ee203264dfa64.txt §10.2 ("Credential Rotation") deploy the new credential before revoking the
old one; done in that order, the vendor never refuses a credential the integration presents. A
`credential.rejected` event (the integration presented a revoked, wrong or not-yet-registered
credential) fails `no_credential_rejected`.

Matched: the events where the vendor (or any, without `vendor`) was presented a credential: requests,
token grants and refreshes, token failures and rejections. None: the vendor was never called, and the
check matched nothing."""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.models import NoCredentialRejected
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.journal import (
    CredentialRejectedEvent,
    RequestEvent,
    TokenFailedEvent,
    TokenIssuedEvent,
    TokenRefreshedEvent,
)

_SHOWN = 3  # rejections described in the detail
_PRESENTED = (RequestEvent, TokenIssuedEvent, TokenRefreshedEvent, TokenFailedEvent, CredentialRejectedEvent)


def no_credential_rejected(spec: NoCredentialRejected, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: requests, token and rejection events of the vendor. Nothing: the vendor was never called."""
    threshold = f"<= {spec.max} rejections"
    presented = [e for e in ctx.events if isinstance(e, _PRESENTED) and spec.vendor in (None, e.vendor)]
    if not presented:
        why = f"{spec.vendor} was never called" if spec.vendor else "no vendor was called"
        return nothing(spec, why=why, unit="rejections",
                       threshold=threshold, source=source)
    rejected = [e for e in presented if isinstance(e, CredentialRejectedEvent)]
    scope = f" by {spec.vendor}" if spec.vendor else ""
    if not rejected:
        detail = f"no credential was refused{scope} ({len(presented)} call(s) and token event(s))"
    else:
        shown = "; ".join(f"{e.vendor} refused {e.credential} at {e.t:g}s ({e.error}"
                          + (", fell back)" if e.fallback else ")") for e in rejected[:_SHOWN])
        more = f"; {len(rejected) - _SHOWN} more" if len(rejected) > _SHOWN else ""
        detail = shown + more
    return result(spec, passed=len(rejected) <= spec.max, observed=len(rejected), unit="rejections",
                  threshold=threshold, source=source, detail=detail, matched=len(presented))
