"""Checks: expectation models, their evaluators over the journal, and results.

`models` (the `Expectation` union), `base` (what every model shares), `registry` (`@evaluator`,
`evaluate_all`), `context` (the journal as checks see it). Evaluators: `breaker`, `sla`, `credentials`;
`sla_rules` (`sla_band`, `alert_rule` over the catalogue in `harness.sla`), `invariants` (`check:
invariant`: `invariant_jobs`, `invariant_privacy`, `invariant_connector`). `evidence` holds journal events
the invariants need that the journal does not record yet.
"""

from harness.checks.registry import evaluate_all
from harness.checks.result import CheckResult

__all__ = ["CheckResult", "evaluate_all"]
