"""The fault driver with network faults in a virtual lab: toxics on the vendor's emulated proxy,
fault.start / fault.stop journaled like simulator faults, overlapping proxy_down windows."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from harness.errors import LabError
from harness.faults.catalogue import LatencyFault, NetLatencyFault, ProxyDownFault, TimeoutFault
from harness.faults.driver import FaultDriver
from harness.journal import FaultFailed, FaultStarted, FaultStopped, Journal
from harness.lab import Lab
from harness.netem import NetemTransport
from harness.rng import RandomSource


def lab(clock: VirtualClock) -> Lab:
    return Lab(mode="virtual", clock=clock, sources=RandomSource(1), vendors=["medplum"], patients=1,
               listener=lambda event: None)


def test_network_faults_become_toxics_and_journal_events() -> None:
    latency = NetLatencyFault.model_validate({"kind": "net_latency", "target": "medplum", "at": 0,
                                              "latency": "800ms", "stream": "upstream"})
    timeout = TimeoutFault.model_validate({"kind": "timeout", "target": "medplum", "at": 0})

    async def main() -> tuple[list[list[str]], list[object]]:
        clock = VirtualClock()
        async with lab(clock) as running:
            journal = Journal(clock)
            driver = FaultDriver(running, journal)
            netem = running.vendor("medplum").network
            assert isinstance(netem, NetemTransport)
            seen = []
            await driver.start("f1", latency)
            await driver.start("f2", timeout)
            seen.append([t.name for t in netem.toxics])
            await driver.stop("f1")
            seen.append([t.name for t in netem.toxics])
            await driver.stop_all()
            seen.append([t.name for t in netem.toxics])
            return seen, journal.events

    seen, events = run_virtual(main)
    assert seen == [["ehrlab-f1", "ehrlab-f2"], ["ehrlab-f2"], []]
    starts = [e for e in events if isinstance(e, FaultStarted)]
    assert [(e.fault_id, e.fault, e.target) for e in starts] == [("f1", "net_latency", "medplum"),
                                                                  ("f2", "timeout", "medplum")]
    assert starts[0].params == {"toxic": "latency", "stream": "upstream", "toxicity": 1.0, "latency": 800,
                                "jitter": 0}
    assert [(e.fault_id, e.fault) for e in events if isinstance(e, FaultStopped)] == [("f1", "net_latency"),
                                                                                      ("f2", "timeout")]


def test_overlapping_proxy_down_windows_keep_the_proxy_down_until_the_last_ends() -> None:
    down = ProxyDownFault.model_validate({"kind": "proxy_down", "target": "medplum", "at": 0})

    async def main() -> list[bool]:
        clock = VirtualClock()
        async with lab(clock) as running:
            driver = FaultDriver(running, Journal(clock))
            netem = running.vendor("medplum").network
            assert isinstance(netem, NetemTransport)
            states = []
            for action in (driver.start("f1", down), driver.start("f2", down), driver.stop("f1"), driver.stop("f2")):
                await action
                states.append(netem.enabled)
            return states

    assert run_virtual(main) == [False, False, False, True]


def test_a_toxic_that_cannot_be_removed_is_a_journaled_lab_error() -> None:
    fault = TimeoutFault.model_validate({"kind": "timeout", "target": "medplum", "at": 0})

    async def main() -> tuple[str, list[object]]:
        clock = VirtualClock()
        async with lab(clock) as running:
            journal = Journal(clock)
            driver = FaultDriver(running, journal)
            await driver.start("f1", fault)
            await running.vendor("medplum").network.remove_toxic("ehrlab-f1")  # removed behind the driver's back
            with pytest.raises(LabError) as info:
                await driver.stop("f1")
            return str(info.value), journal.events

    message, events = run_virtual(main)
    assert message == "could not stop fault f1 (timeout@medplum): NetworkControlError: toxic 'ehrlab-f1' not found"
    [failed] = [e for e in events if isinstance(e, FaultFailed)]
    assert (failed.fault_id, failed.action) == ("f1", "stop")


def test_overlapping_simulator_faults_of_one_kind_each_end_at_their_own_time() -> None:
    short = LatencyFault.model_validate({"kind": "latency", "target": "medplum", "at": 0, "min": "100ms",
                                         "max": "100ms"})
    long = LatencyFault.model_validate({"kind": "latency", "target": "medplum", "at": 0, "min": "2s", "max": "2s"})

    async def main() -> list[list[dict[str, object]]]:
        clock = VirtualClock()
        async with lab(clock) as running:
            driver = FaultDriver(running, Journal(clock))
            admin = running.vendor("medplum").admin
            seen = []
            await driver.start("short", short)
            await driver.start("long", long)
            await driver.stop("short")
            seen.append((await admin.get("/admin/chaos")).json()["faults"])
            await driver.stop("long")
            seen.append((await admin.get("/admin/chaos")).json()["faults"])
            return seen

    after_short, after_long = run_virtual(main)
    assert [(f["kind"], f["max_ms"]) for f in after_short] == [("latency", 2000)]
    assert after_long == []
