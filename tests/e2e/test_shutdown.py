"""Every long-running command stops in order on SIGTERM as on Ctrl-C: exit 0 (a server stopped on request) or
130 (a load run cut short), no traceback, nothing it created for itself left behind (each child's TMPDIR is an
empty folder of the test's, checked empty afterwards), nothing of the user's lost (`service --db` keeps its data
and, served again, adds no demo patients). `ehrlab run --mode real` is tests/e2e/test_aborts.py's; `ehrlab
proxy`'s SIGINT with a config is tests/toxiproxy/test_cli.py's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import REPO, default_sigint

pytestmark = pytest.mark.real_network

STOP_TIMEOUT_S = 30.0  # a loaded 2-core machine: uvicorn's graceful shutdown, the worker's close


def _read_until(proc: subprocess.Popen[str], marker: str, limit: int = 60) -> str:
    """The child's stdout up to the line with `marker`; fails with its stderr when it ended without one."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line or len(lines) >= limit:
            break
    text = "".join(lines)
    if marker not in text:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"no {marker!r} line on stdout: {text}\nstderr: {err}")
    return text


@contextmanager
def _command(args: list[str], tmp: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("EHRLAB_CONTAINER", None)
    with subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise AssertionError(f"did not stop within {STOP_TIMEOUT_S:g}s of {sig.name}: {err}") from None
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_removes_the_private_key_on_sigterm_and_ctrl_c(tmp_path: Path, sig: signal.Signals) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with _command(["serve", "epic", "--seed", "2", "--patients", "1"], tmp) as proc:
        text = _read_until(proc, "admin token")
        key = re.search(r"private key\s+(\S+)", text)
        assert key, text
        key_file = Path(key.group(1))
        assert key_file.is_file(), text
        assert key_file.is_relative_to(tmp), text  # in the child's own temporary folder
        code, out, err = _stop(proc, sig)
    assert code == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
    assert not key_file.exists()
    assert list(tmp.iterdir()) == []


def test_proxy_on_sigterm_exits_0_and_leaves_nothing(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with _command(["proxy", "--port", "0", "--seed", "1"], tmp) as proc:
        assert "Toxiproxy API on http://127.0.0.1:" in _read_until(proc, "Toxiproxy API")
        code, _, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    assert list(tmp.iterdir()) == []


def _stats(url: str, token: str) -> dict[str, int]:
    """How many encounters and observations the service holds (synced or not: the sync may still be draining)."""
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        response = client.get("/fhir/admin/reconciliation/stats", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    stats = response.json()["stats"]
    return {kind: int(stats[kind]["total"]) for kind in ("encounters", "observations")}


def _serve_service(args: list[str], tmp: Path) -> tuple[dict[str, int], list[str], int, str]:
    """Start the service, read its stats and demo patients through its API and printout, SIGTERM it."""
    with _command(["service", *args], tmp) as proc:
        assert proc.stdout is not None
        text = _read_until(proc, "demo patients")
        url = re.search(r"service URL\s+(http://127\.0\.0\.1:\d+)", text)
        token = re.search(r"operator token\s+([0-9a-f]{64})", text)
        patients = re.search(r"demo patients\s+(\S.*?)\s+\(", text)
        assert url, text
        assert token, text
        assert patients, text
        stats = _stats(url.group(1), token.group(1))
        code, _, err = _stop(proc, signal.SIGTERM)
    assert "Traceback" not in err, err
    return stats, patients.group(1).split(", "), code, err


def test_service_on_sigterm_removes_its_temporary_database(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    _, patients, code, err = _serve_service(["--seed", "4"], tmp)
    assert code == 0, err  # before: killed by the signal (-15), its database left behind
    assert len(patients) == 3
    assert list(tmp.iterdir()) == []


def test_service_served_again_on_the_same_db_keeps_its_data_and_adds_no_demo_patients(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    db = tmp_path / "app.db"
    first, patients, code, err = _serve_service(["--seed", "5", "--db", str(db)], tmp)
    assert code == 0, err
    assert db.is_file()  # the user's database stays
    again, patients_again, code, err = _serve_service(["--seed", "5", "--db", str(db)], tmp)
    assert code == 0, err
    assert patients_again == patients  # the same demo patients, no new ones
    assert len(patients) == 3
    assert first == {"encounters": 3, "observations": 3}
    assert again == first  # encounters and observations: as many as before, nothing added
    assert list(tmp.iterdir()) == []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.slow
def test_load_on_sigterm_ends_its_processes_and_removes_the_service_database(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    reports = tmp_path / "reports"
    with _command(["load", "service", "--users", "1", "--run-time", "60s", "--seed", "3", "--report-dir",
                   str(reports)], tmp) as proc:
        assert proc.stdout is not None
        _read_until(proc, "== load")
        deadline = time.monotonic() + 60  # real time: the launcher starts the simulators and the service
        launcher_log = None
        while time.monotonic() < deadline:
            logs = list(reports.glob("*/launcher.log"))
            if logs and "serving" in logs[0].read_text() and any(tmp.iterdir()):
                launcher_log = logs[0]
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert launcher_log is not None, "the launcher did not serve"
        pid = re.search(r"\(pid (\d+)\)", launcher_log.read_text())
        assert pid
        code, _, err = _stop(proc, signal.SIGTERM)
    assert code == 130, err
    assert "Traceback" not in err
    assert not _pid_alive(int(pid.group(1)))  # the launcher did not outlive ehrlab load
    assert list(tmp.iterdir()) == []  # its service database's folder went with it
    assert "Traceback" not in launcher_log.read_text()
    assert list(reports.glob("*/ready.json")) == []  # the run's credentials are not left in the report
