"""Runbook 001's severity rules, walked row by row: for each row of `severity_rules.RULES` an evidence where that
row decides the level, the level asserted, and the row's words found in the runbook."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.report.evidence import Evidence, VendorImpact
from harness.report.records import LostRecord, RecordAccount
from harness.report.severity import LABELS, classify
from harness.report.severity_rules import RULES, Rule

RUNBOOK = Path(__file__).resolve().parents[3].parent / "shared" / "runbooks" / "001_96254f1eba941e65.txt"
QUIET = Evidence(operations=100)
EPIC_DOWN = VendorImpact(vendor="epic", operations=50, failed=20, worst_rate=0.0, outages=((10.0, 40.0),))
CERNER_DOWN = VendorImpact(vendor="cerner", operations=50, failed=20, worst_rate=0.0, outages=((20.0, 50.0),))
LOST = RecordAccount(jobs=10, jobs_failed=1, jobs_unfinished=0, consent_refused=0, resynced=0,
                     lost=(LostRecord("encounter", "enc_1", "job j1 failed for good (ServerError)", 5.0),))

CASES: dict[str, Evidence] = {
    "records-lost": replace(QUIET, records=LOST),
    "jobs-lost-or-duplicated": replace(QUIET, lost_checks=("invariant[no_job_lost_or_duplicated]",)),
    "phi-exposure": replace(QUIET, phi_exposure=("invariant[no_phi_to_medplum]",)),
    "consent-bypass": replace(QUIET, consent_bypass=("invariant[consent_never_bypassed]",)),
    "all-services-unavailable": replace(QUIET, failed=40, vendors=(EPIC_DOWN, CERNER_DOWN), all_down_s=20.0),
    "vendor-down": replace(QUIET, failed=20, vendors=(EPIC_DOWN,)),
    "breaker-open": replace(QUIET, breakers_opened=("epic_prod",)),
    "failover-exhausted": replace(QUIET, failover_exhausted=2),
    "authentication-failures": replace(QUIET, auth_failures=1),
    "intermittent-errors": replace(QUIET, failed=3),
    "slow-responses": replace(QUIET, slow_buckets=2),
    "throttled": replace(QUIET, throttled=5),
    "degraded-reads": replace(QUIET, degraded=("epic",)),
    "failed-check": replace(QUIET, failed_checks=("latency",)),
    "minimal-impact": QUIET,
}


def test_every_row_has_a_case_and_rows_are_ordered_by_level() -> None:
    assert list(CASES) == [rule.id for rule in RULES]
    levels = [rule.level for rule in RULES]
    assert levels == sorted(levels)
    assert set(levels) == set(LABELS)
    assert RULES[-1].id == "minimal-impact"


@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
def test_the_row_decides_the_level(rule: Rule) -> None:
    evidence = CASES[rule.id]
    severity = classify(evidence)
    assert (severity.level, severity.rules) == (rule.level, (rule.id,))
    assert severity.path == rule.path
    assert severity.reasons == tuple(rule.reasons(evidence))
    if rule.id != "minimal-impact":  # without the row, the same evidence is classified lower
        lower = classify(evidence, tuple(r for r in RULES if r is not rule))
        assert lower.level > rule.level


@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
def test_the_row_holds_nowhere_else(rule: Rule) -> None:
    """A row only holds on evidence about what it names: on a quiet run it says nothing (but the last)."""
    assert bool(rule.reasons(QUIET)) == (rule.id == "minimal-impact")


@pytest.mark.skipif(not RUNBOOK.is_file(), reason="the runbooks are not next to the repository")
@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
def test_the_rows_words_are_the_runbooks(rule: Rule) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    table = text[text.index("### Severity Levels"):text.index("## Response Procedures")]
    for words in rule.runbook:
        assert words in text, f"{rule.id}: {words!r} is not in runbook 001"
    row = next(line for line in table.splitlines() if line.startswith(f"| **{rule.level} - "))
    level_words = [w for w in rule.runbook if w in row]
    flow = re.search(rf"-->\|[^|]+\| \w+\[{rule.level} - ", table)
    assert level_words or flow, f"{rule.id}: none of its words is in 001's {rule.level} row"


def test_a_higher_row_wins_and_every_row_at_that_level_gives_its_reason() -> None:
    evidence = replace(QUIET, records=LOST, phi_exposure=("invariant[no_phi_to_medplum]",), failed=20,
                       vendors=(EPIC_DOWN,), breakers_opened=("epic",))
    severity = classify(evidence)
    assert (severity.level, severity.rules) == ("P0", ("records-lost", "phi-exposure"))
    assert severity.path == ("Data loss or breach? Yes",)
    assert len(severity.reasons) == 2


def test_a_table_with_no_row_that_holds_is_refused() -> None:
    with pytest.raises(ValueError, match="no severity rule holds"):
        classify(QUIET, tuple(r for r in RULES if r.id != "minimal-impact"))
