"""`ehrlab service`: a real process on loopback that prints its URL and secrets and answers /health;
bad flags exit 2 with one line on stderr."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from harness.cli import main
from tests.e2e.helpers import REPO, default_sigint


def _read_until(stream: IO[str], marker: str, limit: int = 40) -> str:
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if marker in line or len(lines) >= limit:
            break
    return "".join(lines)


@pytest.mark.real_network
def test_service_serves_health_and_guards_admin_with_the_printed_token(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    command = [sys.executable, "-m", "harness.cli", "service", "--seed", "3", "--db", str(db)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as proc:
        try:
            assert proc.stdout is not None
            text = _read_until(proc.stdout, "database")
            url = re.search(r"service URL\s+(http://127\.0\.0\.1:\d+)", text)
            token = re.search(r"operator token\s+([0-9a-f]{64})", text)
            cron = re.search(r"cron secret\s+([0-9a-f]{64})", text)
            assert url, text
            assert token, text
            assert cron, text
            with httpx.Client(base_url=url.group(1), timeout=10) as client:
                health = client.get("/health")
                assert health.status_code == 200
                assert health.json()["checks"]["queue"] == "healthy"
                assert client.get("/fhir/admin/queue/stats").status_code == 401
                stats = client.get("/fhir/admin/queue/stats", headers={"Authorization": f"Bearer {token.group(1)}"})
                assert stats.status_code == 200
                assert stats.json()["success"] is True
                operator = {"Authorization": f"Bearer {token.group(1)}"}
                deadline = time.monotonic() + 30  # real process, real time: the demo syncs drain
                while client.get("/fhir/admin/queue/stats", headers=operator).json()["stats"]["completed"] < 6:
                    assert time.monotonic() < deadline, "the demo patients' sync jobs did not complete"
                    time.sleep(0.05)
                mirror = client.post("/fhir/admin/audit-mirror/cron", headers={"X-Cron-Secret": cron.group(1)},
                                     content=b'{"limit": 1000}')
                assert mirror.status_code == 200, mirror.text
                assert mirror.json()["result"]["mirrored"] >= 6  # the demo patients' syncs, audited by Medplum
                mirror_stats = client.get("/fhir/admin/audit-mirror/stats", headers=operator)
                assert mirror_stats.json()["stats"]["totalMirrored"] == mirror.json()["result"]["mirrored"]
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, stderr = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "Traceback" not in stderr
    assert token.group(1) not in stderr


@pytest.mark.parametrize(("args", "message"), [
    (["service", "--port", "70000"], "--port"),
    (["service", "--host", "10.1.2.3"], "loopback"),
    (["service", "--port", "abc"], "invalid int"),
    (["service", "--db", "/no/such/dir/app.db"], "--db"),
])
def test_service_rejects_bad_flags_with_exit_2(args: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
