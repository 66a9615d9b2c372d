"""The scenario format's newer parts: operator steps, tags, configured vendors, contradicting faults; and
`ehrlab validate` / `list` / `run --only/--skip` on top of them. Every rule has a file that breaks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ScenarioError, UsageError
from harness.scenario import load_scenario
from harness.scenario.select import load_all, select
from harness.steps.catalogue import RevokeCredential, SetRateLimit

BASE = """\
name: {name}
description: d
runbook: ["000_030ea53f0735abf7.txt §1"]
tags: [{tags}]
duration: 5m
workload:
  - operation: read_patient
    vendor: medplum
    rate: 1/s
{extra}expectations:
  - check: success_rate
    min: 99%
"""


def scenario(tmp_path: Path, extra: str = "", *, name: str = "s", tags: str = "a") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE.format(name=name, tags=tags, extra=extra), encoding="utf-8")
    return path


def error(tmp_path: Path, extra: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario(tmp_path, extra))
    return info.value


def test_steps_load_as_typed_models(tmp_path: Path) -> None:
    loaded = load_scenario(scenario(tmp_path, """\
steps:
  - {at: 1m, vendor: medplum, action: revoke_credential}
  - {at: 2m, vendor: cerner, action: set_rate_limit, limit: 5, window: 1m}
"""))
    revoke, limit = loaded.steps
    assert isinstance(revoke, RevokeCredential)
    assert (revoke.at, revoke.which) == (60.0, "old")
    assert isinstance(limit, SetRateLimit)
    assert limit.body() == {"limit": 5, "window_s": 60.0}
    assert loaded.vendors() == ["medplum", "cerner"]  # a step's vendor is started too


def test_unknown_action_names_line_and_field(tmp_path: Path) -> None:
    err = error(tmp_path, "steps:\n  - at: 1m\n    vendor: medplum\n    action: reboot_datacenter\n")
    assert (err.line, err.field) == (13, "steps[0].action")
    assert "reboot_datacenter" in err.message
    assert "add_credential" in err.message


def test_step_after_the_end(tmp_path: Path) -> None:
    assert "after the end" in error(tmp_path, "steps:\n  - {at: 6m, vendor: medplum, action: expire_tokens}\n").message


def test_bad_tag(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario(tmp_path, tags="Not A Tag"))
    assert info.value.field == "tags[0]"


@pytest.mark.parametrize(("second", "fails"), [
    ("{kind: outage, target: medplum, at: 2m, for: 1m, mode: drop}", True),   # 503 and a drop at once
    ("{kind: outage, target: medplum, at: 2m, for: 1m}", False),              # the same outage twice holds
    ("{kind: outage, target: medplum, at: 3m, for: 1m, mode: drop}", False),  # one after the other
    ("{kind: outage, target: cerner, at: 2m, for: 1m, mode: drop}", False),   # another target
    ("{kind: latency, target: medplum, at: 2m, for: 1m}", False),             # another kind
])
def test_contradicting_faults(tmp_path: Path, second: str, fails: bool) -> None:
    extra = f"faults:\n  - {{kind: outage, target: medplum, at: 1m, for: 2m}}\n  - {second}\n"
    if fails:
        err = error(tmp_path, extra)
        assert "cannot both hold" in err.message
        assert "faults[0] and faults[1]" in err.message
    else:
        assert len(load_scenario(scenario(tmp_path, extra)).faults) == 2


def test_references_must_be_configured_vendors(tmp_path: Path) -> None:
    ok = "setup:\n  vendors: [medplum]\n"
    assert load_scenario(scenario(tmp_path, ok)).vendors() == ["medplum"]
    err = error(tmp_path, ok + "faults:\n  - {kind: outage, target: epic, at: 1m}\n")
    assert "faults[0] refers to vendor 'epic'" in err.message
    err = error(tmp_path, ok + "steps:\n  - {at: 1m, vendor: cerner, action: expire_tokens}\n")
    assert "steps[0] refers to vendor 'cerner'" in err.message


def test_selection_by_tags(tmp_path: Path) -> None:
    scenario(tmp_path, name="one", tags="epic, slow")
    scenario(tmp_path, name="two", tags="epic")
    scenario(tmp_path, name="three", tags="medplum")
    loaded = load_all([tmp_path])
    assert [s.name for _, s in select(loaded, ["epic"])] == ["one", "two"]
    assert [s.name for _, s in select(loaded, ["epic"], ["slow"])] == ["two"]
    assert [s.name for _, s in select(loaded, [], ["epic"])] == ["three"]
    with pytest.raises(UsageError, match="no scenario is tagged nope"):
        select(loaded, ["nope"])
    with pytest.raises(UsageError, match="leaves no scenario"):
        select(loaded, ["slow"], ["epic"])


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    scenario(tmp_path, name="one")
    (tmp_path / "copy.yaml").write_text((tmp_path / "one.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UsageError, match="already used"):
        load_all([tmp_path])


def test_validate_and_list_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(tmp_path, name="one", tags="epic")
    assert main(["validate", str(tmp_path)]) == 0
    assert "1 scenario file(s) valid" in capsys.readouterr().out
    assert main(["list", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split("\t")[:2] == ["one", "300s"]
    (tmp_path / "bad.yaml").write_text(BASE.format(name="bad", tags="x", extra="").replace("min: 99%", "min: 5s"),
                                       encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:12" in err
    assert "expectations[0].min" in err
    assert "expected a percentage like 99% or a ratio like 0.99, got '5s'" in err  # a threshold of the wrong unit
    assert main(["run", str(tmp_path / "one.yaml"), "--only", "medplum"]) == 2
    assert "no scenario is tagged medplum" in capsys.readouterr().err


@pytest.mark.parametrize(("check", "message"), [
    ("{check: latency, max: 99%}", "expected a duration like 90s"),                 # a ratio where a time goes
    ("{check: success_rate, min: 500ms}", "expected a percentage like 99%"),       # a time where a ratio goes
    ("{check: breaker_open, vendor: medplum}", "unknown check 'breaker_open'"),    # a check that does not exist
    ("{check: events, kind: request, where: {colour: red}, min: 1}", "no field 'colour'"),
])
def test_bad_expectations_are_named(tmp_path: Path, check: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(name="s", tags="a", extra="").replace(
        "expectations:\n  - check: success_rate\n    min: 99%\n", f"expectations:\n  - {check}\n"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in info.value.message
    assert info.value.line == 11
    assert info.value.field is not None
    assert info.value.field.startswith("expectations[0]")


def test_the_library_validates() -> None:
    assert main(["validate", str(Path(__file__).resolve().parents[2] / "scenarios")]) == 0
