"""The same outage scenario over real sockets: simulators served by uvicorn on 127.0.0.1, real HTTP,
the real clock running 30x faster than the wall so the 7-minute scenario takes about 15 s."""

from __future__ import annotations

import pytest

from harness.journal import RequestEvent
from harness.runner import run_scenario
from harness.scenario import load_scenario
from tests.e2e.helpers import REPO


@pytest.mark.real_network
@pytest.mark.slow
def test_outage_scenario_passes_in_real_mode() -> None:
    path = REPO / "scenarios" / "medplum-outage.yaml"
    run = run_scenario(load_scenario(path), file=path, mode="real", seed=5, time_scale=30)
    failing = [f"{c.name}: observed {c.observed}, {c.detail}" for c in run.checks if not c.passed]
    assert not failing, failing
    requests = run.journal.of(RequestEvent)
    assert any(r.status == 503 for r in requests)
    assert any(r.status == 200 for r in requests)
