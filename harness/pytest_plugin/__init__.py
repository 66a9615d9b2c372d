"""ehrlab's pytest plugin (entry point `pytest11: ehrlab`): the lab as fixtures, scenario files as tests.

Fixtures (function scope; every one starts in the test's mode, virtual unless told otherwise):

    ehrlab_lab          a started `harness.lab.Lab` (all four vendors unless the ehrlab_lab marker names some)
    ehrlab_simulator    factory: ehrlab_simulator("epic") -> a vendor simulator (in-process or on loopback)
    ehrlab_medplum, ehrlab_epic, ehrlab_cerner, ehrlab_allscripts   the same, one vendor each
    ehrlab_toxiproxy    the Toxiproxy API: the embedded server on 127.0.0.1, or the one at TOXIPROXY_URL
    ehrlab_service      the integration service (FastAPI), wired by `wire_service` against ehrlab_medplum
    ehrlab_run_scenario ehrlab_run_scenario("scenarios/x.yaml") -> ScenarioRun; fails the test if a check fails
    ehrlab_scenario_run the run of the test's ehrlab_scenario marker
    ehrlab_loop, ehrlab_mode, ehrlab_seed   the test's event loop (`run(coro)`), mode and seed

Markers:

    @pytest.mark.ehrlab_scenario("scenarios/x.yaml", mode=None, seed=None, time_scale=None)
    @pytest.mark.ehrlab_lab(mode="real", vendors=["medplum"], patients=5, seed=None)

Options: --ehrlab-mode virtual|real, --ehrlab-seed N, --ehrlab-report-dir DIR, --ehrlab-time-scale X,
--ehrlab-inconclusive skip|fail, --ehrlab-allow-remote.

The loopback guard (`harness.guard`, as `ehrlab run`): a Toxiproxy outside loopback (`TOXIPROXY_URL`, or a
container engine's host) fails the test before any connection, unless `--ehrlab-allow-remote`.
What the test code says (marker or argument) wins over an option; an option wins over a scenario file's seed.

Importing this module is cheap and never imports the lab (nor locust): the plugin loads in every pytest
session of an environment where ehrlab is installed, so everything heavy is imported inside the fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

import pytest

from harness.pytest_plugin.containers import ehrlab_redis_url as ehrlab_redis_url  # a fixture: registered here

if TYPE_CHECKING:
    from harness.pytest_plugin.loop import EhrlabLoop
    from harness.pytest_plugin.resources import IntegrationService, LabHandle, ServedSimulator, ToxiproxyServer
    from harness.pytest_plugin.scenarios import Outcome, RunRequest
    from harness.runner import ScenarioRun

Mode = Literal["virtual", "real"]
DEFAULT_SEED = 1  # a scenario file's seed, else this, unless --ehrlab-seed (as `ehrlab run`)
DEFAULT_PATIENTS = 5

MARKERS = (
    "ehrlab_scenario(path, mode=None, seed=None, time_scale=None): run an ehrlab scenario file; the test fails "
    "with the checks that failed",
    "ehrlab_lab(mode=None, vendors=None, patients=None, seed=None): configure this test's ehrlab fixtures "
    "(mode 'virtual' or 'real', the lab's vendors, synthetic patients per simulator)",
)

_OUTCOMES = pytest.StashKey[dict[int, "Outcome"]]()  # ehrlab_scenario marker index -> its run


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ehrlab", "ehrlab: EHR/FHIR chaos lab")
    group.addoption("--ehrlab-mode", choices=("virtual", "real"), default=None,
                    help="mode of ehrlab fixtures and scenarios: virtual (in-process, virtual time; the default) "
                         "or real (loopback sockets, real time)")
    group.addoption("--ehrlab-seed", type=int, default=None,
                    help=f"seed of ehrlab fixtures and scenarios (default: a scenario file's seed, else "
                         f"{DEFAULT_SEED})")
    group.addoption("--ehrlab-report-dir", type=Path, default=None,
                    help="write each scenario run's report (summary.json, junit.xml, report.html, "
                         "allure-results/, ...) under this directory")
    group.addoption("--ehrlab-containers", action="store_true", default=False,
                    help="start a real Toxiproxy and Redis in containers (testcontainers) for ehrlab_toxiproxy and "
                         "ehrlab_redis_url; tests needing them skip where no Docker engine answers "
                         "(also EHRLAB_CONTAINERS=1)")
    group.addoption("--ehrlab-inconclusive", choices=("skip", "fail"), default="skip",
                    help="a scenario the lab could not judge (INCONCLUSIVE, ABORTED): skip its test with the reason "
                         "(default), or fail it, for a release gate that must not go green on a run nobody judged")
    group.addoption("--ehrlab-allow-remote", action="store_true", default=False,
                    help="real mode: allow a Toxiproxy outside loopback (a remote TOXIPROXY_URL); without it the lab "
                         "refuses one before connecting (ehrlab's --allow-remote)")
    group.addoption("--ehrlab-time-scale", type=float, default=1.0,
                    help="real mode: run the scenario clock this many times faster than the wall (default 1)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # looptime (an ehrlab dependency: the virtual clock) installs a pytest plugin that, without pytest-asyncio,
    # fails the setup of every fixture of every test (looptime 0.9: `_should_patch` reads `__name__` of the
    # missing "asyncio" plugin). ehrlab's own pyproject disables it with `-p no:looptime_plugin`; do the same
    # for any project that installs ehrlab, unless pytest-asyncio is there (then looptime's plugin works).
    manager = config.pluginmanager
    if manager.getplugin("asyncio") is None and manager.has_plugin("looptime_plugin"):
        manager.set_blocked("looptime_plugin")
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    scale = config.getoption("--ehrlab-time-scale", 1.0)
    if scale is not None and scale <= 0:
        raise pytest.UsageError("--ehrlab-time-scale must be positive")


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("--ehrlab-seed")
    mode = config.getoption("--ehrlab-mode") or "virtual"
    return f"ehrlab: mode {mode}, seed {seed if seed is not None else 'per scenario, else 1'}"


def _lab_marker(node: pytest.Item) -> dict[str, Any]:
    marker = node.get_closest_marker("ehrlab_lab")
    if marker is None:
        return {}
    unknown = set(marker.kwargs) - {"mode", "vendors", "patients", "seed"}
    if marker.args or unknown:
        _misuse(f"{node.nodeid}: ehrlab_lab takes keywords mode, vendors, patients, seed only")
    return dict(marker.kwargs)


def _allow_remote(config: pytest.Config) -> bool:
    return bool(config.getoption("--ehrlab-allow-remote", False))


def _guard_target(url: str, config: pytest.Config) -> None:
    """The loopback guard (`harness.guard`): fail the test, before any connection, on a remote Toxiproxy."""
    from harness import guard
    from harness.errors import UsageError

    try:
        guard.check_target("the Toxiproxy URL", url, allow_remote=_allow_remote(config),
                           opt_in="--ehrlab-allow-remote")
    except UsageError as exc:
        _misuse(f"ehrlab: {exc}")


def _misuse(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _mode(config: pytest.Config, explicit: object = None) -> Mode:
    value = explicit if explicit is not None else (config.getoption("--ehrlab-mode") or "virtual")
    if value not in ("virtual", "real"):
        _misuse(f"ehrlab mode must be 'virtual' or 'real', not {value!r}")
    return cast(Mode, value)


def _seed(config: pytest.Config, explicit: object = None) -> int | None:
    if explicit is not None:
        if not isinstance(explicit, int):
            _misuse(f"ehrlab seed must be an integer, not {explicit!r}")
        return explicit
    option: int | None = config.getoption("--ehrlab-seed")
    return option


# --- the lab and its parts -------------------------------------------------------------------------------------


@pytest.fixture
def ehrlab_mode(request: pytest.FixtureRequest) -> Mode:
    """The mode of this test's ehrlab fixtures: the ehrlab_lab marker's, else --ehrlab-mode, else virtual."""
    return _mode(request.config, _lab_marker(request.node).get("mode"))


@pytest.fixture
def ehrlab_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's ehrlab fixtures: the ehrlab_lab marker's, else --ehrlab-seed, else 1."""
    seed = _seed(request.config, _lab_marker(request.node).get("seed"))
    return DEFAULT_SEED if seed is None else seed


@pytest.fixture
def ehrlab_loop(ehrlab_mode: Mode, ehrlab_seed: int, request: pytest.FixtureRequest) -> Iterator[EhrlabLoop]:
    """The event loop the test's lab parts live on: `ehrlab_loop.run(coroutine)` runs code on it."""
    from harness.pytest_plugin.loop import EhrlabLoop

    loop = EhrlabLoop(ehrlab_mode, ehrlab_seed, time_scale=request.config.getoption("--ehrlab-time-scale"))
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def ehrlab_lab(ehrlab_loop: EhrlabLoop, request: pytest.FixtureRequest) -> Iterator[LabHandle]:
    """A started lab: simulators, the network between them (netem or Toxiproxy) and the integration's clients.

    Real mode puts a Toxiproxy in front of each simulator: the ehrlab_toxiproxy fixture's server when the test
    uses it, else the one at TOXIPROXY_URL, else an embedded one of the lab's own."""
    from harness.pytest_plugin.resources import start_lab
    from harness.vendors import VENDORS

    options = _lab_marker(request.node)
    vendors = list(options.get("vendors") or VENDORS)
    unknown = [v for v in vendors if v not in VENDORS]
    if unknown:
        _misuse(f"ehrlab_lab: unknown vendor(s) {', '.join(unknown)}; known: {', '.join(VENDORS)}")
    toxiproxy_url = None
    if ehrlab_loop.mode == "real" and "ehrlab_toxiproxy" in request.fixturenames:
        server: ToxiproxyServer = request.getfixturevalue("ehrlab_toxiproxy")
        toxiproxy_url = server.url
    if ehrlab_loop.mode == "real" and toxiproxy_url is None:
        from harness.lab import toxiproxy_url_from_env

        env_url = toxiproxy_url_from_env(dict(os.environ))
        if env_url is not None:
            _guard_target(env_url, request.config)  # a clean test failure; the lab would refuse it too
    stack = AsyncExitStack()
    try:
        yield start_lab(ehrlab_loop, stack, vendors=vendors, patients=options.get("patients", DEFAULT_PATIENTS),
                        toxiproxy_url=toxiproxy_url, allow_remote=_allow_remote(request.config))
    finally:
        ehrlab_loop.run(stack.aclose())


@pytest.fixture
def ehrlab_simulator(ehrlab_loop: EhrlabLoop,
                     request: pytest.FixtureRequest) -> Iterator[Callable[[str], ServedSimulator]]:
    """`ehrlab_simulator(vendor)` starts that vendor's simulator (once per test): in-process in virtual mode
    (its `client` is an httpx.AsyncClient on the ASGI app), on 127.0.0.1 in real mode."""
    from harness.pytest_plugin.resources import start_simulator

    patients = _lab_marker(request.node).get("patients", DEFAULT_PATIENTS)
    stack = AsyncExitStack()
    started: dict[str, ServedSimulator] = {}

    def start(vendor: str) -> ServedSimulator:
        if vendor not in started:
            started[vendor] = start_simulator(ehrlab_loop, stack, vendor, patients=patients)
        return started[vendor]

    try:
        yield start
    finally:
        ehrlab_loop.run(stack.aclose())


@pytest.fixture
def ehrlab_medplum(ehrlab_simulator: Callable[[str], ServedSimulator]) -> ServedSimulator:
    """The medplum simulator (`ehrlab_simulator("medplum")`)."""
    return ehrlab_simulator("medplum")


@pytest.fixture
def ehrlab_epic(ehrlab_simulator: Callable[[str], ServedSimulator]) -> ServedSimulator:
    """The epic simulator (`ehrlab_simulator("epic")`)."""
    return ehrlab_simulator("epic")


@pytest.fixture
def ehrlab_cerner(ehrlab_simulator: Callable[[str], ServedSimulator]) -> ServedSimulator:
    """The cerner simulator (`ehrlab_simulator("cerner")`)."""
    return ehrlab_simulator("cerner")


@pytest.fixture
def ehrlab_allscripts(ehrlab_simulator: Callable[[str], ServedSimulator]) -> ServedSimulator:
    """The allscripts simulator (`ehrlab_simulator("allscripts")`)."""
    return ehrlab_simulator("allscripts")


@pytest.fixture
def ehrlab_toxiproxy(ehrlab_seed: int, request: pytest.FixtureRequest) -> Iterator[ToxiproxyServer]:
    """The Toxiproxy API, on the real clock in a thread of its own: the embedded Toxiproxy-compatible server on
    127.0.0.1, the Toxiproxy at TOXIPROXY_URL (then the proxies the test created are deleted after it), or in
    containers mode (`--ehrlab-containers`) a real Toxiproxy container."""
    from harness.lab import toxiproxy_url_from_env
    from harness.pytest_plugin.containers import toxiproxy_container_url
    from harness.pytest_plugin.loop import EhrlabLoop
    from harness.pytest_plugin.resources import start_toxiproxy

    with toxiproxy_container_url(request.config) as container_url:
        external = container_url or toxiproxy_url_from_env(dict(os.environ))
        if external is not None:
            _guard_target(external, request.config)
        loop = EhrlabLoop("real", ehrlab_seed)
        try:
            server = start_toxiproxy(loop, external)
            before = server.proxy_names() if external else set()
            try:
                yield server
            finally:
                if external:
                    for name in sorted(server.proxy_names() - before):
                        server.http.delete(f"/proxies/{name}")
                server.http.close()
        finally:
            loop.close()


@pytest.fixture
def ehrlab_service(ehrlab_loop: EhrlabLoop, ehrlab_medplum: ServedSimulator,
                   tmp_path: Path) -> Iterator[IntegrationService]:
    """The integration service (FastAPI) wired against the ehrlab_medplum simulator: connector, resilience,
    job queue and worker (SQLite under tmp_path), consent, sync, audit."""
    from harness.pytest_plugin.resources import start_service

    stack = AsyncExitStack()
    try:
        yield start_service(ehrlab_loop, stack, ehrlab_medplum, tmp_path / "app.db")
    finally:
        ehrlab_loop.run(stack.aclose())


# --- scenarios -------------------------------------------------------------------------------------------------


def _request_for(item: pytest.Item, path: object, *, mode: object, seed: object,
                 time_scale: object) -> RunRequest:
    from harness.pytest_plugin.scenarios import RunRequest, resolve

    if not isinstance(path, str | Path):
        _misuse(f"{item.nodeid}: an ehrlab scenario path must be a str or Path, not {path!r}")
    scale = time_scale if time_scale is not None else item.config.getoption("--ehrlab-time-scale")
    if not isinstance(scale, int | float) or scale <= 0:
        _misuse(f"{item.nodeid}: ehrlab time_scale must be a positive number, not {scale!r}")
    test_dir = item.path.parent if getattr(item, "path", None) is not None else None
    return RunRequest(path=resolve(path, rootdir=item.config.rootpath, test_dir=test_dir),
                      mode=_mode(item.config, mode), seed=_seed(item.config, seed), time_scale=float(scale),
                      nodeid=item.nodeid, allow_remote=_allow_remote(item.config))


def _execute(item: pytest.Item, request: RunRequest) -> Outcome:
    """Run, write the report (with --ehrlab-report-dir), show the timeline in Allure; a lab or file error fails
    the test with its one-line message."""
    from harness.errors import HarnessError
    from harness.pytest_plugin import scenarios

    try:
        outcome = scenarios.execute(request, item.config.getoption("--ehrlab-report-dir"))
    except HarnessError as exc:
        pytest.fail(f"ehrlab: {exc}", pytrace=False)
    run = outcome.run
    item.user_properties.append(("ehrlab", f"{run.scenario.name}: {run.verdict} (mode {run.mode}, seed {run.seed})"))
    if outcome.report is not None:
        item.user_properties.append(("ehrlab_report", str(outcome.report)))
    return outcome


def _check(outcome: Outcome, config: pytest.Config) -> None:
    """FAIL fails the test. INCONCLUSIVE skips it, saying why: the lab could not judge (a fault it could not
    inject, its own lateness in real mode past the scenario's `lab.max_lateness`), so neither a pass nor a
    failure of the system under test may be claimed; `ehrlab run` exits 3 for the same run. With
    `--ehrlab-inconclusive fail` it fails instead (the message still says the lab, not the system, is why)."""
    if outcome.run.verdict == "fail":
        pytest.fail(outcome.failure_message(), pytrace=False)
    if outcome.run.verdict in ("inconclusive", "aborted"):
        if config.getoption("--ehrlab-inconclusive", "skip") == "fail":
            pytest.fail(outcome.failure_message(), pytrace=False)
        pytest.skip(outcome.failure_message())


class ScenarioRunner:
    """`ehrlab_run_scenario(path, mode=None, seed=None, time_scale=None, check=True) -> ScenarioRun`."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def __call__(self, path: str | Path, *, mode: Mode | None = None, seed: int | None = None,
                 time_scale: float | None = None, check: bool = True) -> ScenarioRun:
        """Run the scenario file; with `check` (the default) a failing check fails the test, naming the check,
        what was observed, the threshold, the detail, the runbook section and the replay command."""
        outcome = _execute(self._item, _request_for(self._item, path, mode=mode, seed=seed, time_scale=time_scale))
        if check:
            _check(outcome, self._item.config)
        return outcome.run


@pytest.fixture
def ehrlab_run_scenario(request: pytest.FixtureRequest) -> ScenarioRunner:
    """Run a scenario file from the test: `run = ehrlab_run_scenario("scenarios/x.yaml")`."""
    return ScenarioRunner(cast(pytest.Item, request.node))


def _marker_outcomes(item: pytest.Item) -> list[Outcome]:
    """The runs of the item's ehrlab_scenario markers (closest first), run once and kept on the item."""
    outcomes = item.stash.setdefault(_OUTCOMES, {})
    out = []
    for index, marker in enumerate(item.iter_markers("ehrlab_scenario")):
        if index not in outcomes:
            if len(marker.args) != 1 or set(marker.kwargs) - {"mode", "seed", "time_scale"}:
                _misuse(f"{item.nodeid}: use ehrlab_scenario(path, mode=..., seed=..., time_scale=...)")
            outcomes[index] = _execute(item, _request_for(
                item, marker.args[0], mode=marker.kwargs.get("mode"), seed=marker.kwargs.get("seed"),
                time_scale=marker.kwargs.get("time_scale")))
        out.append(outcomes[index])
    return out


@pytest.fixture
def ehrlab_scenario_run(request: pytest.FixtureRequest) -> ScenarioRun:
    """The ScenarioRun of the test's (closest) ehrlab_scenario marker, for further assertions on its journal."""
    item = cast(pytest.Item, request.node)
    outcomes = _marker_outcomes(item)
    if not outcomes:
        _misuse(f"{item.nodeid}: ehrlab_scenario_run needs an ehrlab_scenario marker")
    return outcomes[0].run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test with an ehrlab_scenario marker fails (before its body runs) when a check of the scenario fails."""
    if item.get_closest_marker("ehrlab_scenario") is not None:
        for outcome in _marker_outcomes(item):
            _check(outcome, item.config)
    return (yield)
