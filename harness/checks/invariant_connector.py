"""Connector invariants: no request with an expired or revoked credential (runbook 002 §2.1 token reuse
until 60 s before expiry; 000 §1 and 002 §10.2 credential rotation), breaker transitions legal (000 §2).

`no_expired_or_revoked_credential`, per vendor that obtains tokens (`token.issued` / `token.refreshed`):
- expired: a request started (its `t` less its duration) after the newest token issued before it ended
  had expired (issued + `expires_in_s`, less `margin`, which like the token cache is capped at half the
  lifetime). The newest token is the most favourable reading: a request is flagged only if no token the
  integration held was still valid when it was sent.
- revoked: a request started after the vendor refused the integration's last credential on offer
  (`credential.rejected` with `fallback: false`) and before any new token was issued: it went out with
  a token of a credential the vendor had refused.

`breaker_transitions_legal`: per breaker, each transition starts from the state the previous one ended
in (CLOSED at first), and every transition not marked `manual` is CLOSED->OPEN, OPEN->HALF_OPEN,
HALF_OPEN->CLOSED or HALF_OPEN->OPEN. Manual ones (an operator's transition_to, force_open, disable,
reset; 000 §2 "manually reset") may go anywhere. With `breaker` (or a `vendor` the scenario resolved to its
breaker), only that breaker's transitions.

Matched: `no_expired_or_revoked_credential` the token-authenticated requests checked (none: matched
nothing), `breaker_transitions_legal` the transitions checked (none: matched nothing, the breaker never
moved, so its transitions could not be judged; `allow_empty: true` where that is the point).
"""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.invariant_models import Invariant
from harness.checks.verdict import Verdict
from harness.journal import BreakerEvent, CredentialRejectedEvent, RequestEvent, TokenIssuedEvent, TokenRefreshedEvent

_SHOWN = 3
_EPS = 1e-6
LEGAL = frozenset({("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED"), ("HALF_OPEN", "OPEN")})


def _more(items: list[str]) -> str:
    return "; ".join(items[:_SHOWN]) + (f"; {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def no_expired_or_revoked_credential(spec: Invariant, ctx: CheckContext) -> Verdict:
    margin = f", {spec.margin:g}s margin" if spec.margin else ""
    threshold = f"no request sent after its token expired{margin} or its credential was refused"
    tokens: dict[str, list[tuple[float, float]]] = {}  # vendor -> (issued, usable until)
    for e in ctx.events:
        if isinstance(e, TokenIssuedEvent | TokenRefreshedEvent) and spec.vendor in (None, e.vendor):
            usable = e.t + e.expires_in_s - min(spec.margin, e.expires_in_s / 2)
            tokens.setdefault(e.vendor, []).append((e.t, usable))
    refused: dict[str, list[tuple[float, str]]] = {}
    for e in ctx.events:
        if isinstance(e, CredentialRejectedEvent) and not e.fallback and e.vendor in tokens:
            refused.setdefault(e.vendor, []).append((e.t, e.credential))
    problems: list[str] = []
    checked = 0
    for e in ctx.events:
        if not isinstance(e, RequestEvent) or e.vendor not in tokens:
            continue
        held = [tok for tok in tokens[e.vendor] if tok[0] <= e.t + _EPS]
        if not held:
            continue  # sent before the vendor ever issued a token: not a token-authenticated call
        checked += 1
        sent = e.t - e.duration_ms / 1000.0
        issued, usable = held[-1]
        if usable < sent - _EPS:
            problems.append(f"{e.method} {e.vendor}{e.path} at {sent:g}s [{e.correlation_id}]: newest token "
                            f"(issued {issued:g}s) was usable until {usable:g}s")
            continue
        for at, credential in refused.get(e.vendor, []):
            if issued < at < sent:
                problems.append(f"{e.method} {e.vendor}{e.path} at {sent:g}s [{e.correlation_id}]: {credential} "
                                f"was refused at {at:g}s and no token was issued since {issued:g}s")
                break
    if problems:
        return Verdict(False, len(problems), "requests", threshold, _more(problems), matched=checked)
    if not checked:
        who = spec.vendor or "any vendor"
        why = (f"no token-authenticated request to {who}" if tokens else f"{who} never issued a token")
        return Verdict(True, 0, "requests", threshold, "", matched=0, empty=why)
    vendors = ", ".join(sorted(tokens))
    return Verdict(True, 0, "requests", threshold, f"{checked} token-authenticated request(s) checked ({vendors})",
                   matched=checked)


def breaker_transitions_legal(spec: Invariant, ctx: CheckContext) -> Verdict:
    threshold = "CLOSED->OPEN->HALF_OPEN->CLOSED|OPEN, continuous; other moves only when manual"
    breaker = spec.breaker_name()
    state: dict[str, str] = {}
    problems: list[str] = []
    count = manual = 0
    for e in ctx.events:
        if not isinstance(e, BreakerEvent) or breaker not in (None, e.breaker):
            continue
        count += 1
        before = state.get(e.breaker, "CLOSED")
        if e.from_state != before:
            problems.append(f"{e.breaker} at {e.t:g}s: {e.from_state}->{e.to_state}, but it was {before}")
        if e.manual:
            manual += 1
        elif (e.from_state, e.to_state) not in LEGAL:
            problems.append(f"{e.breaker} at {e.t:g}s: {e.from_state}->{e.to_state} is not a transition the breaker "
                            "makes on its own, and it is not marked manual")
        state[e.breaker] = e.to_state
    if problems:
        return Verdict(False, len(problems), "transitions", threshold, _more(problems), matched=count)
    if not count:
        seen = ", ".join(ctx.breakers()) or "none"
        why = (f"breaker {breaker} made no transition" if breaker else "no breaker made a transition")
        return Verdict(True, 0, "transitions", threshold, "", matched=0, empty=f"{why} (breakers in this run: {seen})")
    return Verdict(True, 0, "transitions", threshold, f"{count} transition(s) legal ({manual} manual)", matched=count)
