"""Scenario files: valid ones load into typed models; every kind of bad input names file, line, field."""

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ScenarioError, ScenarioErrors
from harness.faults.catalogue import LatencyFault, OutageFault
from harness.scenario import load_scenario, scenario_files
from harness.scenario.issues import Issues, LocatedErrors, located

REPO = Path(__file__).resolve().parents[2]

VALID = """\
name: tiny
description: a small scenario
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 5m
workload:
  - operation: read_patient
    vendor: medplum
    rate: 2/s
faults:
  - kind: outage
    target: medplum
    at: 1m
    for: 90s
expectations:
  - check: breaker_opens
    vendor: medplum
    within: 30s
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    return info.value


def test_valid_scenario_loads_into_typed_models(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.duration == 300.0
    assert scenario.workload[0].rate == 2.0
    fault = scenario.faults[0]
    assert isinstance(fault, OutageFault)
    assert (fault.at, fault.for_, fault.mode, fault.status) == (60.0, 90.0, "status", 503)
    assert scenario.vendors() == ["medplum"]


def test_library_scenarios_all_load() -> None:
    files = scenario_files([REPO / "scenarios"])
    assert files, "the scenario library is empty"
    for file in files:
        assert load_scenario(file).runbook


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("rate: 2/s", "rate: [2/s"))
    assert error.file.endswith("scenario.yaml")
    assert error.line is not None
    assert error.line >= 8
    assert "invalid YAML" in error.message


def test_unknown_field_names_line_and_field(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("    rate: 2/s\n", "    rate: 2/s\n    burst: 10\n"))
    assert (error.line, error.field) == (9, "workload[0].burst")
    assert "unknown field" in error.message


def test_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("status: 503", "status: lots").replace(
        "    for: 90s\n", "    for: 90s\n    status: lots\n"))
    assert error.field == "faults[0].status"
    assert error.line == 14
    assert "'lots'" in error.message


def test_negative_duration(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("duration: 5m", "duration: -5m"))
    assert (error.line, error.field) == (4, "duration")
    assert "negative" in error.message


def test_unknown_vendor(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("    vendor: medplum\n    rate", "    vendor: meditech\n    rate"))
    assert (error.line, error.field) == (7, "workload[0].vendor")
    assert "unknown vendor 'meditech'" in error.message
    assert "medplum" in error.message


def test_unknown_fault_kind(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("kind: outage", "kind: meteor"))
    assert (error.line, error.field) == (10, "faults[0].kind")
    assert "meteor" in error.message
    assert "outage" in error.message


def test_missing_required_field(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("duration: 5m\n", ""))
    assert error.field == "duration"
    assert "missing" in error.message


def test_duplicate_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("duration: 5m\n", "duration: 5m\nduration: 6m\n"))
    assert (error.line, error.field) == (5, "duration")
    assert "duplicate" in error.message


def test_fault_after_the_end(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("at: 1m", "at: 9m"))
    assert "after the end" in error.message


def test_latency_bounds_ordered(tmp_path: Path) -> None:
    text = VALID.replace("kind: outage", "kind: latency\n    min: 2s\n    max: 500ms")
    error = load_error(tmp_path, text)
    assert "must not exceed" in error.message
    ok = load_scenario(write(tmp_path, VALID.replace("kind: outage", "kind: latency\n    min: 100ms\n    max: 2s")))
    assert isinstance(ok.faults[0], LatencyFault)
    assert ok.faults[0].chaos_body() == {"min_ms": 100, "max_ms": 2000}


def test_not_a_mapping_and_empty(tmp_path: Path) -> None:
    assert "mapping" in load_error(tmp_path, "- just\n- a list\n").message
    assert "empty" in load_error(tmp_path, "").message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")


def test_one_line_message(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("duration: 5m", "duration: -5m"))
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'scenario.yaml'}:4: field 'duration': ")


# --- every problem at once (issue 13: faster authoring) -----------------------------------------------------

def all_errors(tmp_path: Path, text: str) -> list[ScenarioError]:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(write(tmp_path, text))
    return info.value.errors


def test_every_field_problem_is_listed_with_its_line_and_field(tmp_path: Path) -> None:
    text = (VALID.replace("duration: 5m\n", "duration: 5m\nduration: 6m\n")
            .replace("    rate: 2/s\n", "    rate: 2/s\n    burst: 3\n")
            .replace("target: medplum", "target: meditech")
            .replace("within: 30s", "within: soon"))
    errors = all_errors(tmp_path, text)
    assert [(e.line, e.field) for e in errors] == [
        (5, "duration"), (10, "workload[0].burst"), (13, "faults[0].target"), (19, "expectations[0].within")]
    assert ["duplicate key" in errors[0].message, "unknown field" in errors[1].message,
            "meditech" in errors[2].message, "'soon'" in errors[3].message] == [True] * 4
    text_form = str(ScenarioErrors(errors))
    assert text_form.splitlines()[0] == f"{tmp_path / 'scenario.yaml'}: 4 errors"
    assert text_form.splitlines()[1:] == [f"  {e.one_line()}" for e in errors]


def test_whole_scenario_problems_point_at_the_item_they_name(tmp_path: Path) -> None:
    text = (VALID.replace("    rate: 2/s\n", "    rate: 2/s\n    start: 10s\n    stop: 5s\n")
            .replace("    for: 90s\n", "    for: 90s\n  - kind: outage\n    target: epic\n    at: 9m\n")
            .replace("runbook:", "setup:\n  vendors: [medplum]\nrunbook:"))
    errors = all_errors(tmp_path, text)
    found = [(e.line, e.field) for e in errors]
    assert found == [(12, "workload[0].stop"), (19, "faults[1].target"), (20, "faults[1].at")], errors
    assert "stops before it starts" in errors[0].message
    assert "setup.vendors does not configure" in errors[1].message
    assert "at or after the end (300s)" in errors[2].message


def test_a_nested_model_validator_points_below_its_model(tmp_path: Path) -> None:
    text = VALID.replace("runbook:", "setup:\n  failover:\n    primary: epic\n    fallbacks: [epic]\nrunbook:")
    error = load_error(tmp_path, text)
    assert (error.line, error.field) == (6, "setup.failover.fallbacks")
    assert "different vendors" in error.message


def test_a_value_no_union_member_accepts_is_one_problem(tmp_path: Path) -> None:
    text = VALID + "  - check: events\n    kind: request\n    where: {status: [500]}\n    max: 0\n"
    error = load_error(tmp_path, text)
    assert not isinstance(error, ScenarioErrors)
    assert (error.line, error.field) == (20, "expectations[1].where.status")
    assert error.message.startswith("Input should be a valid string or a valid integer")


def test_issues_collects_located_and_plain_errors() -> None:
    issues = Issues()
    issues.add(("faults", 2, "at"), "too late")
    issues.run(lambda: (_ for _ in ()).throw(located(("steps", 1), "no flags")))
    issues.run(lambda: (_ for _ in ()).throw(ValueError("whole model")))
    issues.run(lambda: None)
    with pytest.raises(LocatedErrors) as info:
        issues.raise_if_any()
    assert [(e.path, e.message) for e in info.value.errors] == [
        (("faults", 2, "at"), "too late"), (("steps", 1), "no flags"), ((), "whole model")]
    assert str(info.value) == "too late; no flags; whole model"  # readable without the loader too
    Issues().raise_if_any()  # nothing found: nothing raised


def test_validate_lists_every_problem_of_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-good.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b-bad.yaml").write_text(VALID.replace("rate: 2/s", "rate: fast").replace("at: 1m", "at: 9m"),
                                         encoding="utf-8")
    (tmp_path / "c-bad.yaml").write_text(VALID.replace("duration: 5m", "duration: 7m\nduration: 5m")
                                         .replace("within: 30s", "within: 30s\n    colour: red"), encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"ok  {(tmp_path / 'a-good.yaml').as_posix()}" in out
    lines = err.strip().splitlines()
    assert lines == [
        f"ehrlab: error: {tmp_path / 'b-bad.yaml'}:8: field 'workload[0].rate': expected a rate like 2/s or 120/m, "
        "got 'fast'",
        f"ehrlab: error: {tmp_path / 'c-bad.yaml'}:5: field 'duration': duplicate key 'duration'",
        f"ehrlab: error: {tmp_path / 'c-bad.yaml'}:19: field 'expectations[0].colour': unknown field",
        "ehrlab: 2 of 3 scenario file(s) invalid (3 errors)",
    ], err
    # b-bad's late fault is found once its rate is valid: whole-scenario rules need every field valid first
    (tmp_path / "b-bad.yaml").write_text(VALID.replace("at: 1m", "at: 9m"), encoding="utf-8")
    assert main(["validate", str(tmp_path / "b-bad.yaml")]) == 2
    assert "b-bad.yaml:12: field 'faults[0].at': faults[0] starts at 540s" in capsys.readouterr().err


def test_run_lists_every_problem_before_running_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, VALID.replace("rate: 2/s", "rate: fast").replace("within: 30s", "within: soon"))
    assert main(["run", str(bad), "--report-dir", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"ehrlab: error: {bad}: 2 errors"
    assert err[1].startswith(f"  {bad}:8: field 'workload[0].rate'")
    assert err[2].startswith(f"  {bad}:17: field 'expectations[0].within'")
    assert not (tmp_path / "reports").exists()


# --- issue 14: each whole-scenario error names the line and field it is about -----------------------------------

def test_duration_zero_points_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("duration: 5m", "duration: 0"))
    assert (error.line, error.field) == (4, "duration")
    assert str(error) == f"{tmp_path / 'scenario.yaml'}:4: field 'duration': duration must be positive"


def test_overlapping_faults_point_at_the_later_one(tmp_path: Path) -> None:
    text = VALID.replace("    for: 90s\n", "    for: 90s\n  - kind: outage\n    target: medplum\n    at: 2m\n"
                                             "    mode: drop\n")
    error = load_error(tmp_path, text)
    assert (error.line, error.field) == (14, "faults[1]")
    assert error.message.startswith("faults[0] and faults[1] are both outage on medplum, overlap in time (60-150s "
                                    "and 120-300s)")


def test_many_contradicting_faults_are_one_line_each_not_one_per_pair(tmp_path: Path) -> None:
    more = "".join(f"  - {{kind: outage, target: medplum, at: 1m, status: {510 + i}}}\n" for i in range(30))
    errors = all_errors(tmp_path, VALID.replace("expectations:\n", more + "expectations:\n"))
    assert [e.field for e in errors] == [f"faults[{i}]" for i in range(1, 31)]
    assert all(e.message.startswith("faults[0] and ") for e in errors)


def test_a_fault_after_the_end_points_at_its_at(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("at: 1m", "at: 9m"))
    assert (error.line, error.field) == (12, "faults[0].at")
    assert error.message == "faults[0] starts at 540s, at or after the end (300s)"


def test_a_vendor_outside_setup_vendors_points_at_its_field(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("runbook:", "setup:\n  vendors: [epic]\nrunbook:")
                       .replace("target: medplum", "target: epic").replace("within: 30s", "within: 30s\n    name: b"))
    assert (error.line, error.field) == (9, "workload[0].vendor"), error
    assert error.message == ("workload[0] refers to vendor 'medplum', which setup.vendors does not configure (epic)")


def test_a_workload_stream_starting_after_the_end_points_at_its_start(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID.replace("    rate: 2/s\n", "    rate: 2/s\n    start: 6m\n"))
    assert (error.line, error.field) == (9, "workload[0].start")
    assert "it would start nothing" in error.message


def test_a_consent_step_on_a_patient_the_pipeline_never_seeded_points_at_it(tmp_path: Path) -> None:
    text = (VALID.replace("runbook:", "setup:\n  sync: {patients: 3}\nrunbook:")
            .replace("expectations:", "steps:\n  - {at: 2m, action: revoke_consent, patient: 3}\nexpectations:"))
    error = load_error(tmp_path, text)
    assert (error.line, error.field) == (17, "steps[0].patient")
    assert error.message == "steps[0] revoke_consent names patient 3 (0-based), but setup.sync seeds 3"


@pytest.mark.parametrize(("old", "new", "line", "field", "says"), [
    ("kind: outage", "kind: latency\n    min: 2s\n    max: 500ms", 11, "faults[0].min", "must not exceed max"),
    ("kind: outage", "kind: slicer\n    average_size: 10\n    size_variation: 10", 12, "faults[0].size_variation",
     "must be less than average_size"),
    ("    within: 30s\n", "    within: 30s\n  - check: success_rate\n    min: 0.9\n    between: [2m, 1m]\n", 20,
     "expectations[1].between", "between: 120s to 60s is empty"),
    ("    within: 30s\n", "    within: 30s\n  - check: events\n    kind: request\n    min: 3\n    max: 2\n", 21,
     "expectations[1].max", "max (2) is below min (3)"),
    ("duration: 5m", "duration: 5m\nlab:\n  max_lateness: 0s", 6, "lab.max_lateness", "max_lateness must be positive"),
])
def test_a_model_check_between_two_fields_points_at_the_field_to_change(tmp_path: Path, old: str, new: str,
                                                                       line: int, field: str, says: str) -> None:
    error = load_error(tmp_path, VALID.replace(old, new))
    assert (error.line, error.field) == (line, field), error
    assert says in error.message
