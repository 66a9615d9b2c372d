"""The same outage scenario over real sockets: simulators served by uvicorn on 127.0.0.1, real HTTP,
the real clock running 12x faster than the wall so the 7-minute scenario takes about 35 s, with two CPU-bound
processes beside it: the run passes, or the lab says it ran late (INCONCLUSIVE with the measured lag), never
a FAIL for the lab's own lateness.

Not faster: latencies are measured in scenario time, so at 12x the 500 ms latency SLA is ~42 ms of wall time.
The scenario bands the *average* latency, as runbook 000 §7 does ("Avg Latency"): a p95 band at 12x failed
now and then on a loaded 2-core CI machine (xdist on both cores), where one stall of a few tens of
milliseconds is enough to move the 95th percentile past 42 ms; the average absorbs it."""

from __future__ import annotations

import asyncio
import random
import re
import time

import httpx
import pytest

from harness.checks.sla import percentile
from harness.clock import RealClock
from harness.journal import FaultStarted, LabLag, LabTiming, RequestEvent, ScenarioStarted
from harness.runner import run_scenario
from harness.scenario import load_scenario
from simulators.medplum import MedplumSettings, create_medplum
from simulators.server import serve
from tests.e2e.helpers import REPO
from tests.support.cpu_hogs import CpuHogs
from tests.support.verdicts import failing, passed_or_lab_late

WALL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.real_network
@pytest.mark.slow
def test_outage_scenario_passes_in_real_mode_beside_two_busy_processes(cpu_hogs: CpuHogs) -> None:
    path = REPO / "scenarios" / "medplum-outage.yaml"
    run = run_scenario(load_scenario(path), file=path, mode="real", seed=5, time_scale=12)
    assert cpu_hogs.running() == 2  # the machine was busy for the whole run
    on_time = passed_or_lab_late(run)  # PASS, or INCONCLUSIVE naming the measured lateness: never FAIL
    assert on_time or run.checks, "a late run still evaluates and reports its checks"
    requests = run.journal.of(RequestEvent)
    assert any(r.status == 503 for r in requests)
    assert any(r.status == 200 for r in requests)
    # the lab journals its own lateness: each fault switch against its plan, and the loop's worst stall
    lags = {lag.what: lag for lag in run.journal.of(LabLag) if lag.source == "fault"}
    assert set(lags) == {"fault f1 start", "fault f1 stop"}
    [started] = run.journal.of(FaultStarted)
    assert started.t == pytest.approx(lags["fault f1 start"].planned + lags["fault f1 start"].late_s, abs=0.01)
    assert lags["fault f1 start"].call_s is not None
    [timing] = run.journal.of(LabTiming)
    assert (timing.time_scale, timing.tolerance_s) == (12.0, 1.0)
    assert timing.samples > 100  # every 50 ms of wall time over ~35 s
    # every event carries the wall-clock time, in order
    walls = [event.wall for event in run.journal.events]
    assert all(isinstance(w, str) and WALL.match(w) for w in walls), walls[:3]
    assert walls == sorted(walls)  # type: ignore[type-var]
    assert run.journal.of(ScenarioStarted)[0].wall is not None


def test_a_virtual_journal_has_no_wall_clock_and_no_lab_timing() -> None:
    """Virtual time cannot run late: no `lab.*` event, no `wall` field, so virtual journals stay byte-identical."""
    path = REPO / "scenarios" / "medplum-outage.yaml"
    run = run_scenario(load_scenario(path), file=path, mode="virtual", seed=5)
    lines = list(run.journal.lines())
    assert not any('"wall"' in line or '"kind":"lab.' in line for line in lines)
    assert lines == list(run_scenario(load_scenario(path), file=path, mode="virtual", seed=5).journal.lines())
    assert not failing(run)


@pytest.mark.real_network
def test_keep_alive_requests_do_not_stall_on_nagle() -> None:
    """Regression: without TCP_NODELAY on accepted sockets every keep-alive response waited ~40 ms for
    the client's delayed ACK (h11 writes headers and body separately). Loopback takes ~1-2 ms."""
    secret = "s" * 40
    simulator = create_medplum(MedplumSettings(clients={"lab": secret}, admin_token="a" * 32), RealClock(),
                               random.Random(1))
    [patient] = simulator.seed_patients(1)

    async def main() -> list[float]:
        async with serve(simulator.app) as base, httpx.AsyncClient(base_url=base) as client:
            token = (await client.post("/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": "lab", "client_secret": secret})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            timings = []
            for _ in range(25):
                started = time.perf_counter()
                response = await client.get(f"/fhir/R4/Patient/{patient}", headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            return timings

    timings = asyncio.run(main())
    assert percentile(timings[5:], 50) < 20, timings
