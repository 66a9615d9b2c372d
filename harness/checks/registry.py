"""The check registry: a plain table from each expectation model to its evaluator, and `evaluate_all`.

A new check is a model (in `models`, `sla_models`, `invariant_models` or `vendor_models`) and an evaluator in a
sibling module, added to `EVALUATORS`; evaluators build their results with `harness.checks.outcome`, so the
arrows run one way (registry -> evaluators -> outcome, models, context).

`evaluate_all` judges a run: the scenario's expectations, then the lab's automatic checks (`automatic`:
`no_unexpected_errors`), which no scenario writes and every run gets. `evaluate` is the expectations alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.checks.automatic import automatic_checks
from harness.checks.breaker import breaker_closes, breaker_half_opens, breaker_opens, breaker_stays_closed
from harness.checks.context import CheckContext
from harness.checks.credentials import no_credential_rejected
from harness.checks.event_count import event_count
from harness.checks.invariant_models import Invariant
from harness.checks.invariants import invariant
from harness.checks.models import (
    BreakerCloses,
    BreakerHalfOpens,
    BreakerOpens,
    BreakerStaysClosed,
    EventCount,
    LatencyPercentile,
    NoCredentialRejected,
    RecoveryTime,
    SuccessRate,
)
from harness.checks.result import CheckResult
from harness.checks.sla import latency, recovery_time, success_rate
from harness.checks.sla_models import AlertRule, SlaBand
from harness.checks.sla_rules import alert_rule, sla_band
from harness.checks.vendor_models import NoHammering, NoTokenStorm, RetryAfterHonoured
from harness.checks.vendor_side import no_hammering, no_token_storm, retry_after_honoured
from harness.journal import Event

Evaluator = Callable[[Any, CheckContext, str], CheckResult]
EVALUATORS: dict[type[Any], Evaluator] = {
    BreakerOpens: breaker_opens,
    BreakerHalfOpens: breaker_half_opens,
    BreakerCloses: breaker_closes,
    BreakerStaysClosed: breaker_stays_closed,
    SuccessRate: success_rate,
    LatencyPercentile: latency,
    RecoveryTime: recovery_time,
    NoCredentialRejected: no_credential_rejected,
    SlaBand: sla_band,
    AlertRule: alert_rule,
    Invariant: invariant,
    EventCount: event_count,
    NoHammering: no_hammering,
    RetryAfterHonoured: retry_after_honoured,
    NoTokenStorm: no_token_storm,
}


def evaluate(expectations: Sequence[Any], events: Sequence[Event], default_source: str,
             context: CheckContext | None = None) -> list[CheckResult]:
    """The scenario's own expectations over `events`, one result each, in order."""
    context = context if context is not None else CheckContext(events)
    results = []
    for expectation in expectations:
        fn = EVALUATORS.get(type(expectation))
        if fn is None:
            raise RuntimeError(f"no evaluator registered for {type(expectation).__name__}")
        results.append(fn(expectation, context, expectation.source or default_source))
    return results


def evaluate_all(expectations: Sequence[Any], events: Sequence[Event], default_source: str) -> list[CheckResult]:
    """A run's verdicts: its expectations, then the automatic checks every run gets."""
    context = CheckContext(events)
    return [*evaluate(expectations, events, default_source, context), *automatic_checks(context)]
