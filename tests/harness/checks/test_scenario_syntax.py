"""The new checks as a scenario file writes them: they load, and a bad one is refused with file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.loader import load_scenario

HEAD = """name: syntax
description: the checks of the SLA catalogue and the invariants
runbook: ["002_437ee203264dfa64.txt §8.4"]
duration: 5m
workload:
  - {operation: read_patient, vendor: medplum, rate: 1/s}
expectations:
"""
GOOD = """  - check: alert_rule
    rule: "002-8.4-failed-jobs"
    fires: false
  - check: alert_rule
    rule: "002-8.4-5xx-rate"
    vendor: medplum
    fires: true
    within: 5m
  - check: sla_band
    sla: "000-7-success-rate"
    vendor: medplum
    scope: steady
    grace: 30s
    worst: warning
  - {check: invariant, invariant: no_job_lost_or_duplicated, stall_timeout: 2m}
  - {check: invariant, invariant: consent_never_bypassed}
  - {check: invariant, invariant: no_phi_to_medplum}
  - {check: invariant, invariant: no_expired_or_revoked_credential, vendor: medplum, margin: 60s}
  - {check: invariant, invariant: every_write_audited}
  - {check: invariant, invariant: breaker_transitions_legal, vendor: medplum}
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def test_the_documented_syntax_loads(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, GOOD))
    names = [e.label() for e in scenario.expectations]
    assert names[:3] == ["alert_rule[002-8.4-failed-jobs]", "alert_rule[002-8.4-5xx-rate,medplum]",
                         "sla_band[000-7-success-rate,medplum]"]
    assert names[3] == "invariant[no_job_lost_or_duplicated]"


@pytest.mark.parametrize(("body", "line", "message"), [
    ('  - check: alert_rule\n    rule: "002-8.4-nope"\n', 9, "unknown alert rule '002-8.4-nope'"),
    ('  - check: alert_rule\n    rule: "002-8.4-memory"\n', 9, "cannot be evaluated over the journal"),
    ('  - check: sla_band\n    sla: "000-7-success-rate"\n    worst: bad\n', 10, "'healthy', 'warning' or 'critical'"),
    # line 9, not 10: the scenario loader reads the union tag `invariant` as the key of the same name
    ("  - check: invariant\n    invariant: consent_never_bypassed\n    margin: 60s\n", 9,
     "option 'margin' does not apply to invariant 'consent_never_bypassed'"),
])
def test_bad_checks_are_refused_precisely(tmp_path: Path, body: str, line: int, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, body))
    assert caught.value.line == line
    assert message in caught.value.message
