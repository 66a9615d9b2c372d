"""Text shared by the report writers: how a check's observed value reads, which checks are the lab's own, and
the banners of the verdicts that are neither pass nor fail.

Verdicts: `pass`, `fail`, `inconclusive` (exit 3: the lab could not judge: its own lateness over tolerance,
a fault it could not inject, a system under test that did not start) and `aborted` (Ctrl-C / SIGTERM: the
journal was cut short). `harness.report.models` declares them; the reports read the verdict as a string, so
they render a summary written before a verdict existed and one written after.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.result import CheckResult, Scalar

LAB_CHECK_KINDS = ("lab",)  # a check of kind `lab` / `lab.*` / `lab_*` judges the lab itself, not the SUT


def observed_text(observed: Scalar, unit: str) -> str:
    """A check's observed value with its unit: a ratio as a percentage, `none` for nothing observed."""
    if observed is None:
        return "none"
    if isinstance(observed, float) and unit == "ratio":
        return f"{observed * 100:.2f}%"
    if isinstance(observed, float):
        return f"{observed:g} {unit}"
    return f"{observed} {unit}"


def _lab_word(word: str) -> bool:
    word = word.lower()
    return any(word == k or word.startswith((f"{k}.", f"{k}_", f"{k}-", f"{k}[")) for k in LAB_CHECK_KINDS)


def is_lab_check(check: CheckResult) -> bool:
    """A check about the lab (its lateness, a fault it could not inject, a SUT that did not start), or one whose
    own verdict is inconclusive: its failure is no fault of the system under test."""
    return _lab_word(check.check) or _lab_word(check.name) or str(check.verdict) == "inconclusive"


def failed_checks(checks: Sequence[CheckResult]) -> list[CheckResult]:
    """Checks that did not pass (failed, or could not be judged)."""
    return [c for c in checks if str(c.verdict) != "pass"]


def inconclusive_reasons(checks: Sequence[CheckResult]) -> list[str]:
    """Why the lab could not judge: each failing lab check with its observed value and threshold."""
    return [f"{c.name}: observed {observed_text(c.observed, c.unit)}, tolerance {c.threshold}"
            + (f" ({c.detail})" if c.detail else "")
            for c in checks if is_lab_check(c) and str(c.verdict) != "pass"]


def verdict_banner(verdict: str, *, interrupted_at: str | None = None, signal: str | None = None,
                   reasons: Sequence[str] = ()) -> str | None:
    """One plain sentence that says what an ABORTED or INCONCLUSIVE verdict means; None for pass and fail."""
    if verdict == "aborted":
        when = f" at {interrupted_at}" if interrupted_at else ""
        how = signal or "Ctrl-C or SIGTERM"
        return (f"ABORTED: the run was interrupted{when} ({how}). The journal and the checks cover "
                "only what happened until then: this is no verdict on the system under test.")
    if verdict == "inconclusive":
        why = "; ".join(reasons) if reasons else "no lab check recorded the reason"
        return (f"INCONCLUSIVE: the lab could not judge this run (exit 3): {why}. The checks of the system under "
                "test are shown as measured, but their verdict is not to be trusted.")
    return None


REAL_MODE_REPLAY = ("a real-mode run (real sockets, real time) does not promise a byte-identical replay: the same "
                    "seed gives the same scenario, not the same journal")
