"""Checks: expectation models, their evaluators over the journal, and results."""

from harness.checks.registry import evaluate_all
from harness.checks.result import CheckResult

__all__ = ["CheckResult", "evaluate_all"]
