"""Scenario files: valid ones load into typed models; every kind of bad input names file, line, field."""

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.faults.catalogue import LatencyFault, OutageFault
from harness.scenario import load_scenario, scenario_files

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
