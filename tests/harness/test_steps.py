"""Operator steps carried out in a virtual lab: credential rotation in both orders, forced token expiry,
rate limits, drift, breaker commands; each journaled without a secret, each misuse a lab error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.journal import CredentialRejectedEvent, OperationEvent, StepDone, TokenRefreshedEvent
from harness.rng import RandomSource
from harness.runner import ScenarioRun, run_scenario
from harness.scenario import load_scenario
from harness.steps.catalogue import DeployCredential

TEMPLATE = """\
name: steps
description: d
runbook: ["000_030ea53f0735abf7.txt §1"]
duration: 5m
setup:
  patients: 5
workload:
  - {{operation: read_patient, vendor: {vendor}, rate: 6/m}}
steps:
{steps}
expectations:
  - check: no_credential_rejected
"""
SEED = 11


def run(tmp_path: Path, steps: str, vendor: str = "medplum") -> ScenarioRun:
    path = tmp_path / "steps.yaml"
    path.write_text(TEMPLATE.format(steps=steps, vendor=vendor), encoding="utf-8")
    return run_scenario(load_scenario(path), file=path, mode="virtual", seed=SEED)


RIGHT = """\
  - {at: 1m, vendor: VENDOR, action: add_credential}
  - {at: 1m30s, vendor: VENDOR, action: deploy_credential}
  - {at: 2m, vendor: VENDOR, action: expire_tokens}
  - {at: 3m, vendor: VENDOR, action: revoke_credential}
  - {at: 3m, vendor: VENDOR, action: retire_credential}
  - {at: 4m, vendor: VENDOR, action: expire_tokens}
"""


@pytest.mark.parametrize("vendor", ["medplum", "epic", "cerner", "allscripts"])
def test_rotation_in_the_right_order_fails_nothing(tmp_path: Path, vendor: str) -> None:
    result = run(tmp_path, RIGHT.replace("VENDOR", vendor), vendor)
    assert result.verdict == "pass", [c for c in result.checks if not c.passed]
    ops = result.journal.of(OperationEvent)
    assert len(ops) == 30
    assert all(op.ok for op in ops)
    done = result.journal.of(StepDone)
    assert [(s.step_id, s.action, s.t) for s in done] == [
        ("s1", "add_credential", 60.0), ("s2", "deploy_credential", 90.0), ("s3", "expire_tokens", 120.0),
        ("s4", "revoke_credential", 180.0), ("s5", "retire_credential", 180.0), ("s6", "expire_tokens", 240.0)]
    assert len(result.journal.of(TokenRefreshedEvent)) >= 2  # re-authenticated after each forced expiry


def test_no_step_writes_a_secret_to_the_journal(tmp_path: Path) -> None:
    result = run(tmp_path, RIGHT.replace("VENDOR", "medplum"))
    rng = RandomSource(SEED).stream("steps.medplum")
    new_secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(48))[:40]
    text = "\n".join(result.journal.lines())
    assert "step.done" in text
    assert new_secret not in text


def test_rotation_in_the_wrong_order_is_seen(tmp_path: Path) -> None:
    result = run(tmp_path, """\
  - {at: 1m, vendor: medplum, action: add_credential}
  - {at: 1m30s, vendor: medplum, action: revoke_credential}
  - {at: 1m30s, vendor: medplum, action: expire_tokens}
  - {at: 3m, vendor: medplum, action: deploy_credential}
""")
    assert result.verdict == "fail"
    [rejected, *_] = result.journal.of(CredentialRejectedEvent)
    assert rejected.t >= 90.0
    failed = [op for op in result.journal.of(OperationEvent) if not op.ok]
    assert failed
    assert {op.error for op in failed} == {"CredentialsRejected"}
    assert all(90.0 <= op.t < 180.0 for op in failed)  # healed by the deployment at 3m


def test_deploy_without_add_is_refused_at_validate_time(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="deploy_credential needs an add_credential step") as caught:
        run(tmp_path, "  - {at: 1m, vendor: medplum, action: deploy_credential}")
    assert caught.value.exit_code == 2
    assert "steps[0].action" in str(caught.value)
    # an add_credential later on the timeline does not count; one earlier (or on another vendor) does
    with pytest.raises(ScenarioError, match="retire_credential needs an add_credential"):
        run(tmp_path, "  - {at: 1m, vendor: medplum, action: retire_credential, which: new}\n"
                      "  - {at: 2m, vendor: medplum, action: add_credential}")
    with pytest.raises(ScenarioError, match="revoke_credential needs an add_credential step for medplum"):
        run(tmp_path, "  - {at: 1m, vendor: epic, action: add_credential}\n"
                      "  - {at: 2m, vendor: medplum, action: revoke_credential, which: new}")


def test_an_impossible_step_at_run_time_is_inconclusive_not_a_failure(tmp_path: Path) -> None:
    """The driver's own guard stays (a scenario built in code skips the loader): the lab could not carry the
    step out, so the run cannot be judged (exit 3), and the journal says why."""
    path = tmp_path / "steps.yaml"
    path.write_text(TEMPLATE.format(steps="  - {at: 1m, vendor: medplum, action: add_credential}",
                                    vendor="medplum"), encoding="utf-8")
    scenario = load_scenario(path)
    deploy = scenario.steps[0].model_copy(update={"action": "deploy_credential"})
    broken = scenario.model_copy(update={"steps": [DeployCredential.model_validate(deploy.model_dump())]})
    result = run_scenario(broken, file=path, mode="virtual", seed=SEED)
    assert result.verdict == "inconclusive"
    assert "deploy_credential needs an add_credential step" in (result.reason or "")


def test_rate_limit_drift_and_breaker_steps(tmp_path: Path) -> None:
    result = run(tmp_path, """\
  - {at: 30s, vendor: medplum, action: set_rate_limit, limiter: fhir_user, limit: 0}
  - {at: 1m, vendor: medplum, action: set_rate_limit, limiter: fhir_user, limit: 50000}
  - {at: 2m, vendor: medplum, action: drift, change: touch, patient: 1}
  - {at: 2m30s, vendor: medplum, action: drift, change: shift_last_updated, patient: 2}
  - {at: 3m, vendor: medplum, action: breaker, command: force_open}
  - {at: 4m, vendor: medplum, action: breaker, command: reset}
""")
    ops = result.journal.of(OperationEvent)
    quota = [op for op in ops if 30.0 <= op.started < 60.0]
    assert quota
    assert all(not op.ok for op in quota)  # a zero quota: every read refused (429), as Medplum would
    forced = [op for op in ops if 180.0 <= op.started < 240.0]
    assert forced
    assert {op.error for op in forced} == {"CircuitOpen"}
    assert all(op.ok for op in ops if op.started >= 241.0 or 61.0 <= op.started < 180.0)
    assert [s.params for s in result.journal.of(StepDone)][2:4] == [
        {"change": "touch", "patient": 1}, {"change": "shift_last_updated", "patient": 2}]


def test_drift_on_a_patient_that_was_not_seeded_is_refused_at_validate_time(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"drifts patient 9 .*setup\.patients seeds 5") as caught:
        run(tmp_path, "  - {at: 1m, vendor: medplum, action: drift, patient: 9}")
    assert "steps[0].patient" in str(caught.value)
    run(tmp_path, "  - {at: 1m, vendor: medplum, action: drift, patient: 4}")  # the last one seeded is fine
