"""The plugin's fixtures and scenario helper, used in ehrlab's own session (where the entry point loads it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness.faults.driver import FaultDriver
from harness.journal import RequestEvent
from harness.netem import Toxic
from harness.pytest_plugin import ScenarioRunner
from harness.pytest_plugin.resources import IntegrationService, LabHandle, ServedSimulator, ToxiproxyServer
from harness.pytest_plugin.scenarios import RunRequest, report_to_allure, timeline
from tests.plugin.support import FAILING, FAILING_CHECK, FAILING_SOURCE, PASSING


def test_importing_the_plugin_is_cheap() -> None:
    """The plugin loads in every pytest session where ehrlab is installed: no lab, no locust on import."""
    code = ("import sys, harness.pytest_plugin; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent', 'fastapi', 'httpx', "
            "'integrations', 'simulators') or m in ('harness.lab', 'harness.runner')]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


@pytest.mark.ehrlab_lab(vendors=["medplum", "epic"], patients=3)
def test_lab_is_virtual_by_default_and_journals_the_integration(ehrlab_lab: LabHandle) -> None:
    assert ehrlab_lab.mode == "virtual"
    assert sorted(ehrlab_lab.vendors) == ["epic", "medplum"]
    epic = ehrlab_lab.vendor("epic")
    assert len(epic.patients) == 3

    async def read() -> tuple[str, float]:
        patient = await epic.client.connector.read("Patient", epic.patients[0])
        return patient.resource_type, ehrlab_lab.journal.elapsed()

    kind, elapsed = ehrlab_lab.run(read())
    assert kind == "Patient"
    assert elapsed < 5  # virtual seconds since the lab started
    assert any(e.vendor == "epic" for e in ehrlab_lab.journal.of(RequestEvent))


def test_simulator_in_process(ehrlab_epic: ServedSimulator, ehrlab_cerner: ServedSimulator) -> None:
    assert ehrlab_epic.base_url == "http://epic.ehrlab.test"
    metadata = ehrlab_epic.run(ehrlab_epic.client.get(ehrlab_epic.fhir_url + "/metadata"))
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    clients = ehrlab_cerner.run(ehrlab_cerner.admin.get("/admin/clients"))
    assert clients.status_code == 200, clients.text
    assert ehrlab_cerner.secrets.client_id in clients.text
    unauthorised = ehrlab_cerner.run(ehrlab_cerner.client.get("/admin/clients"))
    assert unauthorised.status_code in (401, 403)


def test_simulator_vendor_client_authenticates(ehrlab_medplum: ServedSimulator) -> None:
    client = ehrlab_medplum.vendor_client()
    patient = ehrlab_medplum.run(client.connector.read("Patient", ehrlab_medplum.patients[0]))
    assert patient.id == ehrlab_medplum.patients[0]


def test_same_seed_same_simulator_data(ehrlab_medplum: ServedSimulator, ehrlab_lab: LabHandle) -> None:
    """A standalone simulator and the lab's share the seed streams: the same patients for the same seed."""
    assert ehrlab_medplum.patients == ehrlab_lab.vendor("medplum").patients


def test_integration_service(ehrlab_service: IntegrationService) -> None:
    health = ehrlab_service.run(ehrlab_service.client.get("/health"))
    assert health.status_code == 200, health.text
    refused = ehrlab_service.run(ehrlab_service.client.get("/fhir/admin/queue/stats"))
    assert refused.status_code in (401, 403)
    stats = ehrlab_service.run(ehrlab_service.client.get("/fhir/admin/queue/stats",
                                                         headers=ehrlab_service.operator_headers))
    assert stats.status_code == 200, stats.text


def test_toxiproxy_is_served_on_loopback(ehrlab_toxiproxy: ToxiproxyServer) -> None:
    assert ehrlab_toxiproxy.host == "127.0.0.1" or ehrlab_toxiproxy.external
    before = ehrlab_toxiproxy.proxy_names()
    info = ehrlab_toxiproxy.run(ehrlab_toxiproxy.api.create_proxy("plugin-test", upstream="127.0.0.1:9"))
    proxy = ehrlab_toxiproxy.api.proxy(info)
    ehrlab_toxiproxy.run(proxy.add_toxic(Toxic(name="slow", type="latency", attributes={"latency": 100})))
    assert ehrlab_toxiproxy.proxy_names() == before | {"plugin-test"}
    assert httpx.get(f"{ehrlab_toxiproxy.url}/proxies/plugin-test/toxics").json()[0]["name"] == "slow"
    ehrlab_toxiproxy.reset()
    assert httpx.get(f"{ehrlab_toxiproxy.url}/proxies/plugin-test/toxics").json() == []


@pytest.mark.real_network
@pytest.mark.ehrlab_lab(mode="real", vendors=["medplum"], patients=2)
def test_real_lab_goes_through_the_toxiproxy_fixture(ehrlab_lab: LabHandle, ehrlab_toxiproxy: ToxiproxyServer,
                                                     ehrlab_service: IntegrationService) -> None:
    medplum = ehrlab_lab.vendor("medplum")
    assert medplum.base_url.startswith("http://127.0.0.1:")
    assert any(name.startswith("ehrlab-medplum-") for name in ehrlab_toxiproxy.proxy_names())
    patient = ehrlab_lab.run(medplum.client.connector.read("Patient", medplum.patients[0]))
    assert patient.id == medplum.patients[0]
    health = httpx.get(ehrlab_service.base_url + "/health")  # served on loopback: a plain synchronous client
    assert health.status_code == 200, health.text


def test_run_scenario_helper_passes(ehrlab_run_scenario: ScenarioRunner, tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(PASSING, encoding="utf-8")
    run = ehrlab_run_scenario(path)
    assert run.verdict == "pass"
    assert (run.mode, run.seed) == ("virtual", 1)


def test_run_scenario_helper_fails_with_the_failing_check(ehrlab_run_scenario: ScenarioRunner,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "outage.yaml"
    path.write_text(FAILING, encoding="utf-8")
    with pytest.raises(pytest.fail.Exception) as failed:
        ehrlab_run_scenario(path, seed=7)
    message = str(failed.value)
    assert f"- {FAILING_CHECK}: observed " in message
    assert "expected >= 99%" in message
    assert f"runbook: {FAILING_SOURCE}" in message
    assert "--ehrlab-seed 7" in message
    assert f"ehrlab run {path.as_posix()} --mode virtual --seed 7" in message
    run = ehrlab_run_scenario(path, seed=7, check=False)  # the same run, returned instead of failing
    assert run.verdict == "fail"
    assert [c.name for c in run.checks if not c.passed] == [FAILING_CHECK]


def test_an_inconclusive_scenario_skips_the_test_with_the_reason(ehrlab_run_scenario: ScenarioRunner,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """The lab could not judge (here: the outage could not be injected): not a failure of the system under test,
    not a pass either; the test is skipped, saying why (`ehrlab run` exits 3 for the same run)."""
    async def refused(self: FaultDriver, *args: object) -> None:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(FaultDriver, "_chaos", refused)
    path = tmp_path / "outage.yaml"
    path.write_text(FAILING, encoding="utf-8")
    with pytest.raises(pytest.skip.Exception) as skipped:
        ehrlab_run_scenario(path)
    message = str(skipped.value)
    assert "plugin-medplum-outage" in message
    assert "INCONCLUSIVE (mode virtual, seed 1): could not start fault f1 (outage@medplum): ConnectError" in message
    assert "replay: pytest " in message
    assert ehrlab_run_scenario(path, check=False).verdict == "inconclusive"
    # a gate that must not go green on a run nobody judged: --ehrlab-inconclusive fail
    monkeypatch.setattr(ehrlab_run_scenario._item.config.option, "ehrlab_inconclusive", "fail")
    with pytest.raises(pytest.fail.Exception, match=r"INCONCLUSIVE \(mode virtual, seed 1\): could not start fault f1"):
        ehrlab_run_scenario(path)


def test_invalid_scenario_fails_with_its_one_line_error(ehrlab_run_scenario: ScenarioRunner,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(PASSING.replace("check: success_rate", "check: no_such_check"), encoding="utf-8")
    with pytest.raises(pytest.fail.Exception, match=r"ehrlab: .*broken\.yaml:\d+"):
        ehrlab_run_scenario(path)


def test_timeline_names_faults_and_breaker_transitions(ehrlab_run_scenario: ScenarioRunner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "outage.yaml"
    path.write_text(FAILING, encoding="utf-8")
    run = ehrlab_run_scenario(path, check=False)
    lines = timeline(run.journal.events)
    assert any("Fault f1 started: outage on medplum" in line for line in lines)
    assert any("Breaker medplum: CLOSED → OPEN" in line for line in lines)
    # Without allure installed the Allure reporting is skipped, and nothing breaks.
    monkeypatch.setitem(sys.modules, "allure", None)
    report_to_allure(run, RunRequest(path=path, mode="virtual", seed=None, time_scale=1.0, nodeid="t"))
