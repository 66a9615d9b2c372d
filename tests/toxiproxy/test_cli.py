"""`ehrlab proxy` (`simulators.toxiproxy.cli.main`): serves until Ctrl-C; bad input is exit code 2."""

from __future__ import annotations

import inspect
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import simulators.toxiproxy as package
from simulators.toxiproxy.cli import main
from tests.e2e.helpers import default_sigint

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("config", "message"), [
    ("[{", "bad request body: unexpected EOF"),
    ('{"name": "a"}', "bad request body: json: cannot unmarshal object into Go value of type []struct"),
    ('[{"upstream": "127.0.0.1:1"}]', "missing required field: name at proxy 1"),
    ('[{"name": "a", "upstream": "x:1", "listen": "nowhere"}]', "listen tcp: address nowhere: missing port in address"),
])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str,
                                            message: str) -> None:
    path = tmp_path / "proxies.json"
    path.write_text(config)
    assert main(["--port", "0", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ehrlab proxy: error: {path}: ")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "/nonexistent/proxies.json"], "cannot read config /nonexistent/proxies.json"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--port", "many"], "invalid int value"),
    (["--host", "192.0.2.1"], "--host '192.0.2.1': binds a loopback address only"),
    (["--host", "192.0.2.1", "--allow-any-host"], "--host '192.0.2.1': binds a loopback address only"),
    (["--host", "0.0.0.0"], "--host 0.0.0.0: every interface would serve an unauthenticated API"),
    (["--host", "::"], "pass --allow-any-host"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_usage_is_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.real_network
def test_an_api_port_in_use_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in capsys.readouterr().err


@pytest.mark.real_network
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serves_the_config_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}]))
    command = [sys.executable, "-m", "simulators.toxiproxy.cli", "--port", "0", "--config", str(config), "--seed", "9"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            found = re.search(r"on (http://127\.0\.0\.1:\d+) \(seed 9\)", banner)
            assert found, banner
            with httpx.Client(base_url=found.group(1), timeout=5) as http:
                proxies = http.get("/proxies").json()
            assert list(proxies) == ["db"]
            assert proxies["db"]["enabled"] is True
        finally:
            proc.send_signal(stop)
            try:
                _, stderr = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert proc.returncode == 0
    assert "Traceback" not in stderr


def test_public_api() -> None:
    assert package.__all__ == ["VERSION", "ConfigError", "ToxiproxyServer", "serve_toxiproxy"]
    parameters = inspect.signature(package.serve_toxiproxy).parameters
    assert [(p.name, p.default) for p in list(parameters.values())[:3]] == [
        ("host", "127.0.0.1"), ("port", 0), ("config", None)]
    assert list(inspect.signature(main).parameters) == ["argv"]
