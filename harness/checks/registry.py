"""The check registry: each expectation model has one evaluator, registered with `@evaluator`.

New checks (SLA bands, invariants) join by defining a model in `models.py` and an evaluator here
or in a sibling module; the runner only calls `evaluate_all`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from harness.checks.context import CheckContext
from harness.checks.result import CheckResult
from harness.journal import Event

M = TypeVar("M")
Evaluator = Callable[[Any, CheckContext, str], CheckResult]
_EVALUATORS: dict[type[Any], Evaluator] = {}
TypedEvaluator = Callable[[M, CheckContext, str], CheckResult]


def evaluator(model: type[M]) -> Callable[[TypedEvaluator[M]], TypedEvaluator[M]]:
    def register(fn: TypedEvaluator[M]) -> TypedEvaluator[M]:
        if model in _EVALUATORS:
            raise RuntimeError(f"two evaluators for {model.__name__}")
        _EVALUATORS[model] = fn
        return fn

    return register


def evaluate_all(expectations: Sequence[Any], events: Sequence[Event], default_source: str) -> list[CheckResult]:
    from harness.checks import breaker, credentials, event_count, invariants, sla, sla_rules  # noqa: F401  (registers)

    context = CheckContext(events)
    results = []
    for expectation in expectations:
        fn = _EVALUATORS.get(type(expectation))
        if fn is None:
            raise RuntimeError(f"no evaluator registered for {type(expectation).__name__}")
        results.append(fn(expectation, context, expectation.source or default_source))
    return results


def result(expectation: Any, *, passed: bool, observed: float | int | str | None, unit: str, threshold: str,
           source: str, detail: str) -> CheckResult:
    if isinstance(observed, float):
        observed = round(observed, 6)
    return CheckResult(
        name=expectation.label(), check=expectation.check, verdict="pass" if passed else "fail",
        observed=observed, unit=unit, threshold=threshold, source=source, detail=detail,
    )
