"""The plugin as another project uses it: a separate project (its own rootdir and ini, outside this repository,
none of ehrlab's conftest files) whose tests use the fixtures and the marker, run by pytest in a subprocess
where the plugin loads from the installed ehrlab's entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.support import FAILING, FAILING_CHECK, FAILING_SOURCE, PASSING

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

PROJECT_TESTS = '''
import httpx
import pytest


@pytest.mark.ehrlab_scenario("scenarios/steady.yaml")
def test_steady_marker(ehrlab_scenario_run):
    assert ehrlab_scenario_run.verdict == "pass"
    assert (ehrlab_scenario_run.mode, ehrlab_scenario_run.seed) == ("virtual", 1)


@pytest.mark.ehrlab_scenario("scenarios/outage.yaml")
def test_outage_marker():
    raise AssertionError("not reached: the failing scenario fails the test first")


def test_outage_helper(ehrlab_run_scenario):
    ehrlab_run_scenario("scenarios/outage.yaml")


def test_outage_helper_unchecked(ehrlab_run_scenario):
    run = ehrlab_run_scenario("scenarios/outage.yaml", seed=3, check=False)
    assert (run.verdict, run.seed) == ("fail", 3)


@pytest.mark.ehrlab_lab(vendors=["medplum", "epic"], patients=3)
def test_lab(ehrlab_lab):
    assert ehrlab_lab.mode == "virtual"
    epic = ehrlab_lab.vendor("epic")
    assert ehrlab_lab.run(epic.client.connector.read("Patient", epic.patients[0])).resource_type == "Patient"


def test_simulators_and_service(ehrlab_allscripts, ehrlab_service):
    metadata = ehrlab_allscripts.run(ehrlab_allscripts.client.get(ehrlab_allscripts.fhir_url + "/metadata"))
    assert metadata.status_code == 200
    assert ehrlab_service.run(ehrlab_service.client.get("/health")).status_code == 200


def test_toxiproxy(ehrlab_toxiproxy):
    assert httpx.get(ehrlab_toxiproxy.url + "/version").status_code == 200


@pytest.mark.ehrlab_scenario("scenarios/steady.yaml", mode="real", time_scale=60)
def test_steady_over_sockets(ehrlab_scenario_run):
    assert ehrlab_scenario_run.mode == "real"


@pytest.mark.ehrlab_lab(mode="real", vendors=["medplum"], patients=2)
def test_real_lab(ehrlab_lab, ehrlab_medplum):
    assert ehrlab_lab.vendor("medplum").proxy_url.startswith("http://127.0.0.1:")
    assert httpx.get(ehrlab_medplum.fhir_url + "/metadata").status_code == 200  # served on loopback
'''

OPTION_TESTS = '''
import pytest


def test_options(ehrlab_mode, ehrlab_seed):
    assert (ehrlab_mode, ehrlab_seed) == ("real", 5)


@pytest.mark.ehrlab_lab(mode="virtual", seed=2)
def test_the_marker_wins(ehrlab_mode, ehrlab_seed):
    assert (ehrlab_mode, ehrlab_seed) == ("virtual", 2)
'''


def _project(pytester: pytest.Pytester, tests: str) -> None:
    assert not pytester.path.is_relative_to(REPO), "the project must live outside ehrlab's repository"
    # hypothesis' and schemathesis' plugins (ehrlab's dev extras) only slow the subprocess' start by seconds
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest "
                     "-p no:schemathesis\n")
    scenarios = pytester.mkdir("scenarios")
    (scenarios / "steady.yaml").write_text(PASSING, encoding="utf-8")
    (scenarios / "outage.yaml").write_text(FAILING, encoding="utf-8")
    pytester.makepyfile(test_project=tests)


@pytest.mark.slow
@pytest.mark.real_network
def test_another_project_uses_fixtures_and_marker(pytester: pytest.Pytester) -> None:
    _project(pytester, PROJECT_TESTS)
    result = pytester.runpytest_subprocess("--ehrlab-report-dir", "reports", "--alluredir", "allure-results", "-rfEs")
    outcomes = result.parseoutcomes()
    if outcomes.get("skipped"):  # the 60x real-mode run on a busy machine: the lab ran late and said so
        result.assert_outcomes(passed=6, skipped=1, failed=2)
        result.stdout.fnmatch_lines(["SKIPPED *test_project.py*ehrlab scenario plugin-steady-reads* INCONCLUSIVE "
                                     "(mode real, seed 1): the lab ran late: *(tolerance 5 s*"])
    else:
        result.assert_outcomes(passed=7, failed=2)
    result.stdout.fnmatch_lines(["ehrlab: mode virtual, seed per scenario, else 1"])
    result.stdout.fnmatch_lines([
        "*_ test_outage_marker _*",
        "ehrlab scenario plugin-medplum-outage (*scenarios/outage.yaml) FAILED: 1 of * check(s) failed "
        "(mode virtual, seed 1)",
        f"  - {FAILING_CHECK}: observed *; expected >= 99%*",
        f"      runbook: {FAILING_SOURCE}",
        "replay: pytest test_project.py::test_outage_marker --ehrlab-seed 1 --ehrlab-mode virtual",
        "*report: reports/*test_outage_marker-plugin-medplum-outage-virtual-seed1",
    ])
    result.stdout.fnmatch_lines(["FAILED test_project.py::test_outage_marker - *", "FAILED test_project.py::"
                                 "test_outage_helper - *"])
    result.stdout.no_fnmatch_line("*not reached*")

    reports = sorted((pytester.path / "reports").iterdir())
    assert len(reports) == 5  # one per scenario run
    outage = next(r for r in reports if "test_outage_marker" in r.name)
    for name in ("summary.json", "journal.jsonl", "junit.xml", "report.html", "incident.md"):
        assert (outage / name).is_file(), name
    summary = json.loads((outage / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "fail"
    assert summary["scenarios"][0]["checks"][0]["name"] == FAILING_CHECK
    assert any(outage.glob("allure-results/*-result.json"))

    steps = _allure_steps(pytester.path / "allure-results", "test_outage_marker")
    assert any("Fault f1 started: outage on medplum" in s for s in steps)
    assert any("Breaker medplum: CLOSED → OPEN" in s for s in steps)
    assert any(s.startswith(f"check {FAILING_CHECK}: FAIL") for s in steps)


def test_options_choose_mode_and_seed_unless_the_test_says(pytester: pytest.Pytester) -> None:
    _project(pytester, OPTION_TESTS)
    pytester.runpytest("--ehrlab-mode", "real", "--ehrlab-seed", "5").assert_outcomes(passed=2)
    result = pytester.runpytest("--ehrlab-time-scale", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def _allure_steps(directory: Path, test_name: str) -> list[str]:
    for path in directory.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result["name"] == test_name:
            names: list[str] = []
            pending = list(result.get("steps", []))
            while pending:
                step = pending.pop(0)
                names.append(step["name"])
                pending.extend(step.get("steps", []))
            return names
    raise AssertionError(f"no Allure result for {test_name} in {directory}")


CONTAINER_TESTS = """
def test_toxiproxy(ehrlab_toxiproxy):
    assert ehrlab_toxiproxy.http.get("/version").status_code == 200

def test_redis(ehrlab_redis_url):
    assert ehrlab_redis_url.startswith("redis://")
"""


def test_containers_mode_skips_with_the_reason_where_no_docker_engine_answers(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("REDIS_URL", raising=False)
    _project(pytester, CONTAINER_TESTS)
    result = pytester.runpytest("--ehrlab-containers", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*ehrlab containers mode*"])
    plain = pytester.runpytest("-rs")  # without the mode: the embedded proxy, and a Redis only from REDIS_URL
    plain.assert_outcomes(passed=1, skipped=1)
    plain.stdout.fnmatch_lines(["*no Redis: set REDIS_URL, or run with --ehrlab-containers*"])
