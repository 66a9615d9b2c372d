"""The one loopback guard (`harness.guard`) on every path that talks to a proxy, a simulator or a system under
test, and on every bind address: each refusal is exit 2 with one line, and comes before any connection.

Nothing here ever opens a connection to a non-loopback address, not even a refused one: the `loopback_only`
fixture makes every socket connect (and every name lookup) in this process raise for anything but 127.0.0.0/8
and ::1 before the kernel sees it, and the commands run in this process (`harness.cli.main`) under it. No
child process is started (`subprocess.Popen` raises too). The remote addresses are TEST-NET-1 (192.0.2.0/24,
RFC 5737) and 2001:db8::/32 (RFC 3849), documentation ranges.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import guard
from harness.cli import main
from harness.clock import RealClock
from harness.errors import UsageError
from harness.lab import Lab
from harness.rng import RandomSource
from integrations.events import ignore_event

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
REMOTE = "http://192.0.2.1:8474"
FAULTS = REPO / "scenarios" / "medplum-network-faults.yaml"


class RemoteConnect(AssertionError):
    """A connection (or a name lookup) to something other than loopback was attempted."""


def _loopback_address(address: object) -> bool:
    if isinstance(address, tuple) and address:
        try:
            return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
        except ValueError:
            return False
    return isinstance(address, str | bytes)  # AF_UNIX paths: local by nature


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every connect to a non-loopback address, and every lookup of a name, raises in this process (and is
    recorded); no subprocess can start. Yields the attempts."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if not _loopback_address(address):
            attempts.append(address)
            raise RemoteConnect(f"connect to {address!r} attempted")
        real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if not _loopback_address(address):
            attempts.append(address)
            raise RemoteConnect(f"connect_ex to {address!r} attempted")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if host is not None and not (name == "localhost" or _loopback_address((name,))):
            attempts.append(host)
            raise RemoteConnect(f"name lookup of {host!r} attempted")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    def popen(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise RemoteConnect(f"a child process was started: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.delenv(guard.CONTAINER_ENV, raising=False)
    yield attempts
    assert attempts == [], f"the guard let a connection through: {attempts}"


def test_the_fixture_refuses_a_remote_connect_before_the_kernel_sees_it(loopback_only: list[object]) -> None:
    with socket.socket() as sock, pytest.raises(RemoteConnect):
        sock.connect(("192.0.2.1", 8474))
    with pytest.raises(RemoteConnect):
        socket.getaddrinfo("toxiproxy.example", 8474)
    assert loopback_only == [("192.0.2.1", 8474), "toxiproxy.example"]
    loopback_only.clear()  # seen: the fixture's own check at teardown must pass
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.connect(server.getsockname())  # loopback goes through


def _one_line_refusal(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("url", [REMOTE, "http://[2001:db8::1]:8474", "http://toxiproxy.example:8474"])
def test_run_refuses_a_remote_toxiproxy(loopback_only: list[object], monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", url)
    code = main(["run", "scenarios/medplum-network-faults.yaml", "--mode", "real",
                 "--report-dir", str(tmp_path / "reports")])
    assert code == 2
    _one_line_refusal(capsys, "TOXIPROXY_URL points at", "outside loopback", "--allow-remote")
    assert not (tmp_path / "reports").exists()


def test_replay_refuses_a_remote_toxiproxy(loopback_only: list[object], monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", REMOTE)
    assert main(["replay", str(tmp_path / "no-such-report"), "--mode", "real"]) == 2
    _one_line_refusal(capsys, "TOXIPROXY_URL points at 192.0.2.1", "--allow-remote")


def test_load_refuses_a_remote_toxiproxy(loopback_only: list[object], monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the probe: before the guard, this connected to the TOXIPROXY_URL host from the launcher
    monkeypatch.setenv("TOXIPROXY_URL", REMOTE)
    code = main(["load", "read", "--users", "1", "--run-time", "3s", "--fault-scenario", str(FAULTS),
                 "--report-dir", str(tmp_path / "reports")])
    assert code == 2
    _one_line_refusal(capsys, "TOXIPROXY_URL points at 192.0.2.1", "--allow-remote")
    assert not (tmp_path / "reports").exists()  # nothing started, nothing written


def test_load_accepts_allow_remote_as_its_opt_in() -> None:
    from harness.cli import _parser

    args = _parser().parse_args(["load", "read", "--allow-remote"])
    assert args.allow_remote is True
    assert _parser().parse_args(["replay", "reports/latest", "--allow-remote"]).allow_remote is True


def test_the_lab_refuses_a_remote_toxiproxy_when_built(loopback_only: list[object],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def lab(**kwargs: object) -> Lab:
        return Lab(mode="real", clock=RealClock(), sources=RandomSource(1), vendors=["medplum"], patients=1,
                   listener=ignore_event, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(UsageError, match=r"the Toxiproxy URL points at 192\.0\.2\.1"):
        lab(toxiproxy_url=REMOTE)
    monkeypatch.setenv("TOXIPROXY_URL", REMOTE)
    with pytest.raises(UsageError, match=r"TOXIPROXY_URL points at 192\.0\.2\.1"):
        lab()
    lab(allow_remote=True)  # the opt-in: building the lab connects nothing (entering it would)
    monkeypatch.setenv("TOXIPROXY_URL", "http://127.0.0.1:8474")
    lab()


@pytest.mark.parametrize(("flag", "url"), [("--medplum-url", "http://192.0.2.1:8000"),
                                           ("--redis", "redis://192.0.2.1:6379/0"),
                                           ("--medplum-url", "http://medplum.example:8000")])
def test_service_refuses_a_remote_medplum_or_redis(loopback_only: list[object], capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, flag: str, url: str) -> None:
    assert main(["service", flag, url, "--db", str(tmp_path / "app.db")]) == 2
    _one_line_refusal(capsys, f"{flag} points at", "outside loopback", "--allow-remote")
    assert list(tmp_path.iterdir()) == []  # refused before the database was opened


PLUGIN_TESTS = '''
import pytest


@pytest.mark.ehrlab_lab(mode="real", vendors=["medplum"], patients=1)
def test_lab(ehrlab_lab):
    raise AssertionError("not reached: the guard fails the fixture first")


def test_toxiproxy(ehrlab_toxiproxy):
    raise AssertionError("not reached: the guard fails the fixture first")


@pytest.mark.ehrlab_scenario("SCENARIO", mode="real")
def test_scenario():
    raise AssertionError("not reached: the guard fails the scenario first")
'''


def test_the_pytest_plugin_refuses_a_remote_toxiproxy(loopback_only: list[object], monkeypatch: pytest.MonkeyPatch,
                                                      pytester: pytest.Pytester) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", REMOTE)
    pytester.makepyfile(test_guarded=PLUGIN_TESTS.replace("SCENARIO", str(FAULTS)))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:looptime_plugin")
    result.assert_outcomes(failed=1, errors=2)
    text = result.stdout.str()
    assert text.count("points at 192.0.2.1, outside loopback") >= 3, text
    assert "--ehrlab-allow-remote" in text
    assert "not reached" not in text


@pytest.mark.parametrize("command", [["proxy", "--port", "0"], ["serve", "medplum"], ["service"]])
@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_interface_needs_the_opt_in(loopback_only: list[object], capsys: pytest.CaptureFixture[str],
                                          command: list[str], host: str) -> None:
    assert main([*command, "--host", host]) == 2
    _one_line_refusal(capsys, "every interface", "--allow-any-host", "EHRLAB_CONTAINER=1")


@pytest.mark.parametrize("command", [["proxy", "--port", "0"], ["serve", "medplum"], ["service"]])
def test_a_non_loopback_bind_address_is_refused_even_with_the_opt_in(
        loopback_only: list[object], capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert main([*command, "--host", "192.0.2.1", "--allow-any-host"]) == 2
    _one_line_refusal(capsys, "loopback address only")


def test_the_bind_rule() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        guard.check_bind(host, any_host=False)
    for host in ("0.0.0.0", "::"):
        with pytest.raises(UsageError, match="--allow-any-host"):
            guard.check_bind(host, any_host=False)
        guard.check_bind(host, any_host=True)
    for host in ("192.0.2.1", "2001:db8::1", "example.com"):
        with pytest.raises(UsageError, match="loopback address only"):
            guard.check_bind(host, any_host=True)
    assert guard.any_host_allowed(False, {"EHRLAB_CONTAINER": "1"})
    assert not guard.any_host_allowed(False, {})


def test_the_target_rule_resolves_nothing(loopback_only: list[object]) -> None:
    for url in ("http://127.0.0.1:8474", "http://127.9.9.9:1", "http://[::1]:8474", "http://localhost:8474"):
        guard.check_target("x", url, allow_remote=False)
    for url in (REMOTE, "http://[2001:db8::1]:8474", "http://toxiproxy.example:8474", "http://localhost.example:1"):
        with pytest.raises(UsageError, match="outside loopback"):
            guard.check_target("x", url, allow_remote=False)
        guard.check_target("x", url, allow_remote=True)
