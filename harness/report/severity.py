"""Incident severity of a scenario run, classified by runbook 001_96254f1eba941e65.txt's "Incident
Classification" (its Severity Levels table and its Impact Assessment flow) from what the journal and the check
results show.

The rules are data: `harness.report.severity_rules.RULES`, one row per condition with the level it gives and
the runbook's words it encodes. The evidence they read is gathered by `harness.report.evidence`; data loss is
counted in records lost (`harness.report.records`), not in failed jobs. Here: apply the table.

    Data loss, PHI exposure or consent bypass?      yes -> P0
    Services available?                             no  -> P0 (every vendor down at once, more than one)
    Core features working?                          no  -> P1
                                                    partial -> P2
                                                    yes -> P3

A single upstream vendor down is 001's "EMR integration failing" (P1), not "All services unavailable": the
integration itself stayed up and failed fast behind its breaker.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.evidence import SLOW_MEAN_MS, Evidence, VendorImpact, gather, outages
from harness.report.severity_rules import RULES, Level, Rule

CITATION = "001 §Incident Classification (Severity Levels; Impact Assessment)"
LABELS = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}
RESPONSE = {"P0": "< 15 minutes", "P1": "< 1 hour", "P2": "< 4 hours", "P3": "< 24 hours"}
_ORDER: tuple[Level, ...] = ("P0", "P1", "P2", "P3")

__all__ = ["CITATION", "LABELS", "RESPONSE", "SLOW_MEAN_MS", "Evidence", "Severity", "VendorImpact", "classify",
           "gather", "outages"]


@dataclass(frozen=True, slots=True)
class Severity:
    level: Level
    path: tuple[str, ...]  # the Impact Assessment answers that led to it
    reasons: tuple[str, ...]
    rules: tuple[str, ...] = ()  # ids of the table's rows that decided it

    @property
    def label(self) -> str:
        return f"{self.level} - {LABELS[self.level]}"

    @property
    def response_time(self) -> str:
        return RESPONSE[self.level]


def classify(ev: Evidence, rules: tuple[Rule, ...] = RULES) -> Severity:
    """The highest level of any row that holds; reasons from every row that holds at that level, the path
    from the first of them."""
    held = [(rule, reasons) for rule in rules if (reasons := rule.reasons(ev))]
    if not held:
        raise ValueError("no severity rule holds: the table needs a last row that always does")
    level = min((rule.level for rule, _ in held), key=_ORDER.index)
    deciding = [(rule, reasons) for rule, reasons in held if rule.level == level]
    return Severity(level=level, path=deciding[0][0].path,
                    reasons=tuple(reason for _, reasons in deciding for reason in reasons),
                    rules=tuple(rule.id for rule, _ in deciding))
