"""Network faults end to end: the network outage scenario passes in both modes with the same
verdicts, and a fault emulated in virtual mode fails the connector the same way as the same toxic
on a Toxiproxy-compatible proxy over real sockets."""

from __future__ import annotations

import asyncio
import queue
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter

from harness.clock import RealClock, VirtualClock, run_virtual
from harness.errors import UsageError
from harness.faults.catalogue import Fault
from harness.faults.driver import FaultDriver
from harness.journal import FaultStarted, Journal, RequestEvent, parse_line
from harness.lab import Lab, Mode, toxiproxy_url_from_env
from harness.netem import NetemTransport, NetworkControl, Toxic, ToxiproxyApi
from harness.rng import RandomSource
from harness.runner import ScenarioRun, run_scenario
from harness.scenario import load_scenario
from integrations.clock import Clock
from integrations.fhir import ConnectorError
from simulators.medplum import MedplumSettings, MedplumSimulator, create_medplum
from simulators.server import serve
from simulators.toxiproxy import serve_toxiproxy
from simulators.transport import VirtualTransport
from tests.e2e.helpers import REPO
from tests.support.verdicts import passed_or_lab_late

SCENARIO = REPO / "scenarios" / "medplum-network-faults.yaml"


def errors_in(run: ScenarioRun, start: float, stop: float) -> set[str]:
    return {r.error for r in run.journal.of(RequestEvent) if start <= r.t <= stop and r.error}


def assert_network_story(run: ScenarioRun) -> None:
    failing = [f"{c.name}: observed {c.observed}, {c.detail}" for c in run.checks if not c.passed]
    assert not failing, failing
    # in real mode a fault switch is an HTTP call to the proxy: it lands a little (wall) time late
    slack = 0.0 if run.mode == "virtual" else 10.0
    started = [(f.fault, f.t) for f in run.journal.of(FaultStarted)]
    assert [kind for kind, _ in started] == ["reset_peer", "timeout"]
    assert all(0 <= t - planned <= slack for (_, t), planned in zip(started, (60, 210), strict=True)), started
    # the resets fail attempts in transport, the black hole makes them time out, nothing else fails
    assert errors_in(run, 60, 150) == {"ConnectionFailed"}
    assert "RequestTimeout" in errors_in(run, 210, 300)
    assert errors_in(run, 0, 59.999) == set()


def test_network_fault_scenario_passes_in_virtual_mode() -> None:
    run = run_scenario(load_scenario(SCENARIO), file=SCENARIO, mode="virtual", seed=1)
    assert_network_story(run)


@pytest.mark.real_network
@pytest.mark.slow
def test_network_fault_scenario_passes_in_real_mode() -> None:
    """7 scenario minutes at 12x: about 35 s over real sockets, through the embedded Toxiproxy. On a busy
    machine the lab may run later than the scenario's tolerance: then the run is INCONCLUSIVE with the measured
    figure (a `RequestTimeout` before any fault would be the lab's stall, not the integration's), and only what
    does not depend on timing is asserted."""
    run = run_scenario(load_scenario(SCENARIO), file=SCENARIO, mode="real", seed=1, time_scale=12)
    if passed_or_lab_late(run):
        assert_network_story(run)
    else:
        assert [f.fault for f in run.journal.of(FaultStarted)] == ["reset_peer", "timeout"]


CHANCY = """\
name: chancy-network
description: network faults that draw from the RNG (jitter, toxicity, slicer variation)
runbook: ["000_030ea53f0735abf7.txt §7"]
duration: 100s
workload:
  - {operation: read_patient, vendor: medplum, rate: 1/s, arrival: poisson}
faults:
  - {kind: net_latency, target: medplum, at: 10s, for: 40s, latency: 300ms, jitter: 250ms, toxicity: 0.5}
  - {kind: slicer, target: medplum, at: 20s, for: 40s, average_size: 100, size_variation: 60, delay: 1ms}
  - {kind: reset_peer, target: medplum, at: 60s, for: 20s, toxicity: 0.3}
expectations:
  - {check: success_rate, min: 99%, outside_faults: true, grace: 60s}
"""


def test_network_faults_keep_virtual_runs_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "chancy.yaml"
    path.write_text(CHANCY, encoding="utf-8")
    scenario = load_scenario(path)

    def journal(seed: int) -> list[str]:
        return list(run_scenario(scenario, file=path, mode="virtual", seed=seed).journal.lines())

    first = journal(5)
    assert first == journal(5)
    assert first != journal(6)
    durations = {r.duration_ms for r in map(parse_line, first) if isinstance(r, RequestEvent) and r.status}
    assert len(durations) > 20  # jitter and slicing really varied the timings
    assert any('"error":"ConnectionFailed"' in line for line in first)  # some connections were reset


FAULTS: dict[str, dict[str, object]] = {
    "reset_peer upstream": {"kind": "reset_peer", "stream": "upstream"},
    "reset_peer downstream": {"kind": "reset_peer", "timeout": "200ms"},
    "timeout 300ms": {"kind": "timeout", "timeout": "300ms"},
    "timeout forever": {"kind": "timeout", "timeout": 0},
    "limit_data in the head": {"kind": "limit_data", "bytes": 40},
    "limit_data upstream": {"kind": "limit_data", "bytes": 40, "stream": "upstream"},
    "proxy_down": {"kind": "proxy_down"},
}


def fault(spec: dict[str, object]) -> Fault:
    adapter: TypeAdapter[Fault] = TypeAdapter(Fault)
    return adapter.validate_python({"target": "medplum", "at": 0, **spec})


async def outcome(mode: Mode, clock: Clock, spec: dict[str, object]) -> tuple[str, str]:
    """Read a patient through the lab's connector with the fault on: (connector error, its httpx cause)."""
    async with Lab(mode=mode, clock=clock, sources=RandomSource(1), vendors=["medplum"], patients=1,
                   listener=lambda event: None) as lab:
        medplum = lab.vendor("medplum")
        await medplum.client.connector.read("Patient", medplum.patients[0])  # token fetched, link warm
        driver = FaultDriver(lab, Journal(clock))
        await driver.start("f1", fault(spec))
        try:
            await medplum.client.connector.read("Patient", medplum.patients[0])
        except ConnectorError as exc:
            return type(exc).__name__, type(exc.__cause__).__name__
        finally:
            await driver.stop_all()
        return "no error", ""


def in_both_modes(spec: dict[str, object]) -> tuple[tuple[str, str], tuple[str, str]]:
    virtual = run_virtual(lambda: outcome("virtual", VirtualClock(), spec))
    real = asyncio.run(outcome("real", RealClock(scale=20), spec))
    return virtual, real


@pytest.mark.real_network
@pytest.mark.parametrize("name", list(FAULTS))
def test_virtual_fault_and_real_toxic_fail_the_connector_alike(name: str) -> None:
    virtual, real = in_both_modes(FAULTS[name])
    assert virtual[0] != "no error"
    assert virtual == real


def test_each_fault_kind_has_its_connector_error_in_virtual_mode() -> None:
    expected = {
        "reset_peer upstream": ("ConnectionFailed", "ReadError"),
        "reset_peer downstream": ("ConnectionFailed", "ReadError"),
        "timeout 300ms": ("ConnectionFailed", "RemoteProtocolError"),
        "timeout forever": ("RequestTimeout", "TimeoutError"),
        "limit_data in the head": ("ConnectionFailed", "RemoteProtocolError"),
        "limit_data upstream": ("ConnectionFailed", "RemoteProtocolError"),
        "proxy_down": ("ConnectionFailed", "ConnectError"),
    }
    seen = {name: run_virtual(lambda spec=spec: outcome("virtual", VirtualClock(), spec))  # type: ignore[misc]
            for name, spec in FAULTS.items()}
    assert seen == expected




CUTS = [0, 200, 400, 5000]  # nothing; inside the head; inside the body; more than the whole response


async def cut_reads(client: httpx.AsyncClient, patient_id: str, network: NetworkControl) -> list[tuple[str, str]]:
    token = (await client.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": "lab",
                                                       "client_secret": "s" * 40})).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    seen = []
    for limit in CUTS:
        await network.add_toxic(Toxic("cut", "limit_data", attributes={"bytes": limit}))
        try:
            response = await client.get(f"/fhir/R4/Patient/{patient_id}", headers=headers)
            seen.append(("ok", str(len(response.content))))
        except httpx.HTTPError as exc:
            seen.append((type(exc).__name__, str(exc)))
        await network.remove_toxic("cut")
    return seen


def medplum(clock: Clock) -> tuple[MedplumSimulator, str]:
    simulator = create_medplum(MedplumSettings(clients={"lab": "s" * 40}, admin_token="a" * 32), clock,
                               random.Random(1))
    return simulator, simulator.seed_patients(1)[0]


@pytest.mark.real_network
def test_limit_data_cuts_a_response_at_the_same_byte_as_a_real_proxy() -> None:
    """The emulator counts the response's wire bytes as uvicorn writes them, so a cut lands on the
    same byte and httpx reports the same error, to the byte count in its message."""

    async def virtual() -> list[tuple[str, str]]:
        clock = VirtualClock()
        simulator, patient_id = medplum(clock)
        netem = NetemTransport(VirtualTransport(simulator.app), clock=clock, rng=random.Random(1))
        async with httpx.AsyncClient(transport=netem, base_url="http://medplum.test") as client:
            return await cut_reads(client, patient_id, netem)

    async def real() -> list[tuple[str, str]]:
        simulator, patient_id = medplum(RealClock())
        async with serve(simulator.app) as base, serve_toxiproxy() as toxiproxy:
            api = ToxiproxyApi(toxiproxy)
            upstream = httpx.URL(base)
            proxy = api.proxy(await api.create_proxy("cut", upstream=f"{upstream.host}:{upstream.port}"))
            # one connection per request, as in the emulator, so each cut starts counting from 0
            async with httpx.AsyncClient(base_url=proxy.url,
                                         limits=httpx.Limits(max_keepalive_connections=0)) as client:
                seen = await cut_reads(client, patient_id, proxy)
            await api.aclose()
            return seen

    emulated = run_virtual(virtual)
    assert emulated == asyncio.run(real())
    assert [kind for kind, _ in emulated] == ["RemoteProtocolError", "RemoteProtocolError", "RemoteProtocolError", "ok"]
    assert emulated[2][1].startswith("peer closed connection without sending complete message body (received ")


@contextmanager
def toxiproxy_elsewhere() -> Iterator[str]:
    """A Toxiproxy-compatible server on its own thread and loop, on the wall clock: what a real
    Toxiproxy at `TOXIPROXY_URL` looks like to the lab."""
    loop = asyncio.new_event_loop()
    started: queue.Queue[tuple[str, asyncio.Event]] = queue.Queue()

    async def main() -> None:
        stop = asyncio.Event()
        async with serve_toxiproxy() as url:
            started.put((url, stop))
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    url, stop = started.get(timeout=10)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


@pytest.mark.real_network
def test_a_toxiproxy_on_the_wall_clock_gets_toxics_in_scenario_time() -> None:
    """At --time-scale 20, a 2 s net_latency must cost the integration 2 scenario seconds: the lab
    sends a wall-clock Toxiproxy a 100 ms toxic."""

    async def read_with_latency(url: str) -> float:
        clock = RealClock(scale=20)
        async with Lab(mode="real", clock=clock, sources=RandomSource(1), vendors=["medplum"], patients=1,
                       listener=lambda event: None, toxiproxy_url=url) as lab:
            medplum = lab.vendor("medplum")
            assert medplum.proxy_url != medplum.base_url  # the connector goes through the proxy
            await medplum.client.connector.read("Patient", medplum.patients[0])
            await FaultDriver(lab, Journal(clock)).start("f1", fault({"kind": "net_latency", "latency": "2s"}))
            started = clock.monotonic()
            await medplum.client.connector.read("Patient", medplum.patients[0])
            return clock.monotonic() - started

    with toxiproxy_elsewhere() as url:
        elapsed = asyncio.run(read_with_latency(url))
    assert 2.0 <= elapsed < 3.0


def test_toxiproxy_url_comes_from_the_environment_and_is_checked() -> None:
    assert toxiproxy_url_from_env({}) is None
    assert toxiproxy_url_from_env({"TOXIPROXY_URL": " "}) is None
    assert toxiproxy_url_from_env({"TOXIPROXY_URL": "http://127.0.0.1:8474"}) == "http://127.0.0.1:8474"
    for bad in ("127.0.0.1:8474", "ftp://toxiproxy:21", "http://"):
        with pytest.raises(UsageError, match="TOXIPROXY_URL must be a URL like"):
            toxiproxy_url_from_env({"TOXIPROXY_URL": bad})
