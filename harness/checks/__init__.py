"""Checks: expectation models, their evaluators over the journal, and results.

`models` (the `Expectation` union; `sla_models`, `invariant_models`), `base` (what every model shares:
`allow_empty`), `anchors` (scenario times named by a fault), `event_domains` (what `events.where` may
compare), `registry` (the model -> evaluator table, `evaluate`, `evaluate_all`), `context` (the journal as
checks see it), `outcome` (results, and "matched nothing"). Evaluators: `breaker`, `sla`, `credentials`,
`event_count`; `sla_rules` (`sla_band`, `alert_rule` over the catalogue in `harness.sla`), `invariants`
(`check: invariant`: `invariant_jobs`, `invariant_privacy`, `invariant_connector`); `automatic`
(`no_unexpected_errors`, on every run).
"""

from harness.checks.registry import evaluate, evaluate_all
from harness.checks.result import CheckResult

__all__ = ["CheckResult", "evaluate", "evaluate_all"]
