"""Network faults in scenario files: typed models, their toxics in Toxiproxy's units, and errors
that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.faults.catalogue import (
    FAULT_KINDS,
    BandwidthFault,
    LimitDataFault,
    NetLatencyFault,
    ProxyDownFault,
    ResetPeerFault,
    SlicerFault,
    SlowCloseFault,
    TimeoutFault,
)
from harness.netem import Toxic
from harness.scenario import load_scenario

SCENARIO = """\
name: net
description: network faults
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 10m
workload:
  - operation: read_patient
    vendor: medplum
    rate: 1/s
faults:
{faults}
expectations:
  - check: breaker_opens
    vendor: medplum
"""

EVERY_KIND = """\
  - {kind: net_latency, target: medplum, at: 1m, for: 1m, latency: 800ms, jitter: 100ms, stream: upstream}
  - {kind: bandwidth, target: medplum, at: 1m, rate: 50, toxicity: 0.5}
  - {kind: slow_close, target: medplum, at: 1m, delay: 2s}
  - {kind: timeout, target: medplum, at: 1m}
  - {kind: reset_peer, target: medplum, at: 1m, timeout: 250ms}
  - {kind: slicer, target: medplum, at: 1m, average_size: 64, size_variation: 16, delay: 10ms}
  - {kind: limit_data, target: medplum, at: 1m, bytes: 300}
  - {kind: proxy_down, target: medplum, at: 1m, for: 30s}
"""


def load(tmp_path: Path, faults: str) -> object:
    path = tmp_path / "net.yaml"
    path.write_text(SCENARIO.format(faults=faults), encoding="utf-8")
    return load_scenario(path)


def error(tmp_path: Path, faults: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, faults)
    return info.value


def test_every_network_kind_loads_into_its_toxic(tmp_path: Path) -> None:
    scenario = load(tmp_path, EVERY_KIND)
    faults = scenario.faults  # type: ignore[attr-defined]
    assert [type(f) for f in faults] == [NetLatencyFault, BandwidthFault, SlowCloseFault, TimeoutFault,
                                         ResetPeerFault, SlicerFault, LimitDataFault, ProxyDownFault]
    toxics = [f.toxic(f"t{i}") for i, f in enumerate(faults[:-1])]
    assert toxics == [
        Toxic("t0", "latency", "upstream", 1.0, {"latency": 800, "jitter": 100}),
        Toxic("t1", "bandwidth", "downstream", 0.5, {"rate": 50}),
        Toxic("t2", "slow_close", "downstream", 1.0, {"delay": 2000}),
        Toxic("t3", "timeout", "downstream", 1.0, {"timeout": 0}),
        Toxic("t4", "reset_peer", "downstream", 1.0, {"timeout": 250}),
        Toxic("t5", "slicer", "downstream", 1.0, {"average_size": 64, "size_variation": 16, "delay": 10_000}),
        Toxic("t6", "limit_data", "downstream", 1.0, {"bytes": 300}),
    ]
    assert faults[0].params() == {"toxic": "latency", "stream": "upstream", "toxicity": 1.0, "latency": 800,
                                  "jitter": 100}
    assert faults[-1].params() == {}
    assert toxics[0].json() == {"name": "t0", "type": "latency", "stream": "upstream", "toxicity": 1.0,
                                "attributes": {"latency": 800, "jitter": 100}}


def test_unknown_kind_lists_the_network_kinds(tmp_path: Path) -> None:
    e = error(tmp_path, "  - {kind: packet_loss, target: medplum, at: 1m}\n")
    assert (e.line, e.field) == (10, "faults[0].kind")
    for kind in ("outage", "net_latency", "reset_peer", "proxy_down"):
        assert kind in e.message
    assert set(FAULT_KINDS) >= {"net_latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                                "limit_data", "proxy_down"}


def test_a_bare_number_is_refused_for_toxic_durations(tmp_path: Path) -> None:
    e = error(tmp_path, "  - kind: net_latency\n    target: medplum\n    at: 1m\n    latency: 800\n")
    assert (e.line, e.field) == (13, "faults[0].latency")
    assert "800ms" in e.message
    assert load(tmp_path, "  - {kind: timeout, target: medplum, at: 1m, timeout: 0}\n")


@pytest.mark.parametrize(("fault", "field", "words"), [
    ("{kind: net_latency, target: medplum, at: 1m}", "faults[0].latency", "missing"),
    ("{kind: bandwidth, target: medplum, at: 1m, rate: 0}", "faults[0].rate", "greater than or equal to 1"),
    ("{kind: limit_data, target: medplum, at: 1m, bytes: -1}", "faults[0].bytes", "greater than or equal to 0"),
    ("{kind: timeout, target: medplum, at: 1m, toxicity: 1.5}", "faults[0].toxicity", "less than or equal to 1"),
    ("{kind: reset_peer, target: medplum, at: 1m, stream: sideways}", "faults[0].stream", "upstream"),
    ("{kind: slicer, target: medplum, at: 1m, average_size: 10, size_variation: 10}", "faults[0].size_variation",
     "must be less than average_size"),
    ("{kind: proxy_down, target: medplum, at: 1m, toxicity: 0.5}", "faults[0].toxicity", "unknown field"),
    ("{kind: slow_close, target: medplum, at: 1m, delay: 2h}", "faults[0].delay", "less than or equal to 3600"),
])
def test_bad_network_parameters_name_the_field(tmp_path: Path, fault: str, field: str, words: str) -> None:
    e = error(tmp_path, f"  - {fault}\n")
    assert e.field == field
    assert e.line == 10
    assert words in e.message


def test_faster_scales_durations_down_and_rates_up() -> None:
    latency = Toxic("l", "latency", attributes={"latency": 800, "jitter": 10})
    assert latency.faster(40).attributes == {"latency": 20, "jitter": 1}  # 0.25 ms rounds up to 1, never 0
    assert Toxic("t", "timeout", attributes={"timeout": 0}).faster(40).attributes == {"timeout": 0}
    assert Toxic("b", "bandwidth", attributes={"rate": 5}).faster(40).attributes == {"rate": 200}
    assert Toxic("s", "slicer", attributes={"average_size": 64, "delay": 4000}).faster(40).attributes == {
        "average_size": 64, "delay": 100}
    assert Toxic("d", "limit_data", attributes={"bytes": 100}).faster(40).attributes == {"bytes": 100}
    assert latency.faster(1.0) is latency


def test_toxic_rejects_what_toxiproxy_would() -> None:
    with pytest.raises(ValueError, match="unknown toxic type"):
        Toxic("x", "packet_loss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="toxicity"):
        Toxic("x", "latency", toxicity=2)
    with pytest.raises(ValueError, match="non-negative integer"):
        Toxic("x", "latency", attributes={"latency": 1.5})  # type: ignore[dict-item]
