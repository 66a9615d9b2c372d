"""Evaluators of the vendor-side checks (`harness.checks.vendor_models`): judged from `vendor.request` events
only (what the simulators saw), with the fault windows of `fault.start` / `fault.stop`.

- `no_hammering` (000_030ea53f0735abf7.txt §2): a failing fault window is a non-background fault on the vendor
  under which at least `min_failure_rate` of its answers were 5xx or dropped connections; from its start +
  `after` to its end, tumbling `window`s each hold at most `max_requests` requests to the vendor. Matched: the
  requests inside failing fault windows. Nothing: no failing fault window (no fault, or one the vendor did not
  fail under).
- `retry_after_honoured` (000_030ea53f0735abf7.txt §4, 429 "wait and retry"): after a 429 or 503 carrying
  Retry-After, the same client (credential) sends the vendor nothing until the answer's arrival + latency +
  Retry-After, less `slack`. Matched: the answers carrying a Retry-After. Nothing: none.
- `no_token_storm` (002_437ee203264dfa64.txt §2.1, tokens reused until 60 s before expiry): tumbling `window`s
  from 0 each hold at most `max_requests` token requests to the vendor. Matched: the token requests.
  Nothing: none.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.context import CheckContext
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.checks.vendor_models import NoHammering, NoTokenStorm, RetryAfterHonoured
from harness.journal import FaultStarted, FaultStopped, ScenarioEnded, ScenarioStarted, VendorRequestEvent

HAMMERING_SOURCE = "000_030ea53f0735abf7.txt §2"
RETRY_AFTER_SOURCE = "000_030ea53f0735abf7.txt §4"
TOKEN_STORM_SOURCE = "002_437ee203264dfa64.txt §2.1"
_SHOWN = 3


def _more(items: list[str]) -> str:
    return "; ".join(items[:_SHOWN]) + (f"; {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _requests(ctx: CheckContext, vendor: str | None) -> list[VendorRequestEvent]:
    found = [e for e in ctx.events if isinstance(e, VendorRequestEvent) and (vendor is None or e.vendor == vendor)]
    return sorted(found, key=lambda e: (e.t, e.vendor, e.seq))


def _end(ctx: CheckContext) -> float:
    """The scenario's end: its `scenario.end`, else its planned duration, else its last event."""
    ends = [e.t for e in ctx.events if isinstance(e, ScenarioEnded)]
    planned = [e.duration_s for e in ctx.events if isinstance(e, ScenarioStarted)]
    return ends[-1] if ends else planned[0] if planned else max((e.t for e in ctx.events), default=0.0)


def _failing(e: VendorRequestEvent) -> bool:
    return e.status is None or e.status >= 500


def _windows(begin: float, end: float, size: float) -> list[tuple[float, float]]:
    out = []
    at = begin
    while at < end:
        out.append((at, min(at + size, end)))
        at += size
    return out


def _fault_windows(ctx: CheckContext, vendor: str | None) -> list[tuple[str, str, float, float]]:
    """(target, fault name, start, end) of every non-background fault on `vendor` (every vendor if None)."""
    starts: dict[str, FaultStarted] = {}
    found: list[tuple[str, str, float, float]] = []
    for e in ctx.events:
        if isinstance(e, FaultStarted) and not e.background and (vendor is None or e.target == vendor):
            starts[e.fault_id] = e
        elif isinstance(e, FaultStopped) and e.fault_id in starts:
            began = starts.pop(e.fault_id)
            found.append((began.target, began.name or f"{began.fault}@{began.target}", began.t, e.t))
    end = _end(ctx)
    found.extend((s.target, s.name or f"{s.fault}@{s.target}", s.t, end) for s in starts.values())
    return sorted(found, key=lambda w: (w[2], w[0], w[1]))


def no_hammering(spec: NoHammering, ctx: CheckContext, source: str) -> CheckResult:
    source = spec.source or HAMMERING_SOURCE  # its own runbook section, not the scenario's first
    threshold = (f"<= {spec.max_requests} requests per {spec.window:g}s to a failing vendor, from {spec.after:g}s "
                 "after the fault starts")
    unit = "requests/window"
    requests = _requests(ctx, spec.vendor)
    matched = 0
    worst = 0
    over: list[str] = []
    failing_windows = 0
    for target, name, begin, end in _fault_windows(ctx, spec.vendor):
        inside = [e for e in requests if e.vendor == target and begin <= e.t < end]
        failed = sum(1 for e in inside if _failing(e))
        if not failed or failed < spec.min_failure_rate * len(inside):
            continue  # the vendor did not fail under this fault (a latency, an error rate below the breaker's)
        failing_windows += 1
        matched += len(inside)
        for lo, hi in _windows(begin + spec.after, end, spec.window):
            count = sum(1 for e in inside if lo <= e.t < hi)
            worst = max(worst, count)
            if count > spec.max_requests:
                over.append(f"{target}: {count} requests in {lo:g}s-{hi:g}s during {name}")
    if not failing_windows:
        return nothing(spec, why=f"no fault on {spec.vendor or 'any vendor'} under which at least "
                       f"{spec.min_failure_rate:.0%} of its answers were 5xx or dropped connections", unit=unit,
                       threshold=threshold, source=source)
    detail = _more(over) if over else (f"{failing_windows} failing fault window(s), {matched} request(s) in them, "
                                       f"at most {worst} per window after the first {spec.after:g}s")
    return result(spec, passed=not over, observed=worst, unit=unit, threshold=threshold, source=source,
                  detail=detail, matched=matched)


def retry_after_honoured(spec: RetryAfterHonoured, ctx: CheckContext, source: str) -> CheckResult:
    source = spec.source or RETRY_AFTER_SOURCE  # its own runbook section, not the scenario's first
    threshold = "no request from a client before the Retry-After a 429 or 503 gave it"
    unit = "early requests"
    answers = 0
    until: dict[tuple[str, str | None], tuple[float, float]] = {}  # (vendor, client) -> (wait until, asked at)
    early: list[str] = []
    for e in _requests(ctx, spec.vendor):
        key = (e.vendor, e.client)
        waiting = until.get(key)
        if waiting is not None and e.t < waiting[0] - spec.slack:
            early.append(f"{e.vendor} {e.method} {e.path} by {e.client or 'an unauthenticated client'} at {e.t:g}s, "
                         f"{waiting[0] - e.t:.3f}s before the Retry-After given at {waiting[1]:g}s")
        if e.status in (429, 503) and e.retry_after_s is not None:
            answers += 1
            answered = e.t + e.latency_ms / 1000.0
            wait = answered + e.retry_after_s
            if waiting is None or wait > waiting[0]:
                until[key] = (wait, answered)
    if not answers:
        return nothing(spec, why=f"no 429 or 503 with Retry-After from {spec.vendor or 'any vendor'}", unit=unit,
                       threshold=threshold, source=source)
    detail = _more(early) if early else f"{answers} answer(s) with Retry-After, each waited out"
    return result(spec, passed=not early, observed=len(early), unit=unit, threshold=threshold, source=source,
                  detail=detail, matched=answers)


def no_token_storm(spec: NoTokenStorm, ctx: CheckContext, source: str) -> CheckResult:
    source = spec.source or TOKEN_STORM_SOURCE  # its own runbook section, not the scenario's first
    threshold = f"<= {spec.max_requests} token requests per {spec.window:g}s to a vendor"
    unit = "token requests/window"
    tokens = [e for e in _requests(ctx, spec.vendor) if e.token_request]
    if not tokens:
        return nothing(spec, why=f"no token request to {spec.vendor or 'any vendor'}", unit=unit,
                       threshold=threshold, source=source)
    worst = 0
    over: list[str] = []
    end = max(_end(ctx), tokens[-1].t + 1e-6)
    for vendor in sorted({e.vendor for e in tokens}):
        mine: Sequence[VendorRequestEvent] = [e for e in tokens if e.vendor == vendor]
        for lo, hi in _windows(min(0.0, tokens[0].t), end, spec.window):
            count = sum(1 for e in mine if lo <= e.t < hi)
            worst = max(worst, count)
            if count > spec.max_requests:
                over.append(f"{vendor}: {count} token requests in {lo:g}s-{hi:g}s")
    detail = _more(over) if over else f"{len(tokens)} token request(s), at most {worst} per {spec.window:g}s"
    return result(spec, passed=not over, observed=worst, unit=unit, threshold=threshold, source=source,
                  detail=detail, matched=len(tokens))
