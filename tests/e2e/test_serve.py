"""`ehrlab serve`: simulators on loopback for local use, with the credentials a user needs printed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.e2e.helpers import REPO, default_sigint


@pytest.mark.real_network
def test_serve_prints_working_urls_and_credentials_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "harness.cli", "serve", "medplum", "--seed", "3"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as proc:
        try:
            assert proc.stdout is not None
            text = _read_until(proc.stdout, "admin token")
            assert "seed 3" in text
            base = re.search(r"base URL\s+(http://127\.0\.0\.1:\d+)", text)
            client_id = re.search(r"client id\s+(\S+)", text)
            secret = re.search(r"secret\s+(\S+)", text)
            admin = re.search(r"admin token\s+(\S+)", text)
            assert base, text
            assert client_id, text
            assert secret, text
            assert admin, text
            with httpx.Client(base_url=base.group(1), timeout=10) as client:
                token = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                           "client_id": client_id.group(1),
                                                           "client_secret": secret.group(1)})
                assert token.status_code == 200
                bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
                assert client.get("/fhir/R4/Patient", params={"_count": "5"}, headers=bearer).status_code == 200
                admin_headers = {"Authorization": f"Bearer {admin.group(1)}"}
                assert client.get("/admin/chaos", headers=admin_headers).status_code == 200
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in stderr


def _read_until(stream: IO[str], marker: str) -> str:
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


@pytest.mark.parametrize(("args", "message"), [
    (["serve", "meditech"], "unknown vendor 'meditech'"),
    (["serve", "medplum", "--port", "70000"], "--port"),
    (["serve", "medplum", "--host", "10.1.2.3"], "loopback"),
])
def test_serve_rejects_bad_input_with_exit_2(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.real_network
def test_serve_all_gives_epic_users_a_private_key_they_alone_can_read() -> None:
    command = [sys.executable, "-m", "harness.cli", "serve", "all", "--seed", "4", "--patients", "2"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as proc:
        try:
            assert proc.stdout is not None
            text = ""
            while text.count("admin token") < 4:
                text += _read_until(proc.stdout, "admin token")
            for vendor in ("medplum:", "epic:", "cerner:", "allscripts:"):
                assert vendor in text
            key = re.search(r"private key\s+(\S+)\s+\(kid (\S+), ES384", text)
            assert key, text
            path = Path(key.group(1))
            assert path.stat().st_mode & 0o777 == 0o600
            jwk = json.loads(path.read_text())
            assert (jwk["kty"], jwk["kid"], "d" in jwk) == ("EC", key.group(2), True)
            assert "Unity API" in text
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert not path.exists()  # the key folder goes away with the simulators
