"""An external system under test (`sut:`, real mode only): the lab starts it with the simulators' URLs in its
environment, waits for its health endpoint, drives it over HTTP and stops it; a SUT that exits or never becomes
ready makes the run INCONCLUSIVE (exit 3) with its log's last lines; what cannot run is refused up front (exit 2).
The SUT is `tests/data/sut/echo_sut.py`, a stdlib HTTP server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import cli
from harness.sut import process as sut_process
from harness.sut.process import free_port
from tests.e2e.helpers import DATA, REPO, default_sigint

ECHO = DATA / "sut" / "echo_sut.py"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _scenario(tmp_path: Path, *, args: str = "", within: str = "10s", path: str = "/ingest", duration: str = "2s",
              grace: str = "2s",
              env: str = '{SUT_PORT: "{sut.port}", EHR_URL: "{medplum.base_url}", SUT_SCRATCH: "{scratch}", '
                         'SECRET: "{medplum.client_secret}"}',
              sut: str | None = None, headers: str = "{}") -> Path:
    command = json.dumps([sys.executable, str(ECHO), *args.split()])
    sut = sut or f"""
  command: {command}
  env: {env}
  ready: {{path: /health, within: {within}}}
  stop: {{signal: SIGTERM, grace: {grace}}}"""
    file = tmp_path / "sut.yaml"
    file.write_text(f"""name: sut-echo
description: drive a tiny SUT over HTTP
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: {duration}
drain: 2s
sut:{sut}
workload:
  - operation: sut_http
    method: POST
    path: {path}
    body: {{seed: "{{seed}}", kind: vitals}}
    headers: {headers}
    rate: 2/s
expectations:
  - check: success_rate
    min: 1.0
lab: {{max_lateness: 10s}}  # these tests are about the SUT's lifecycle: beside a busy suite the loop stalled 2.6 s
""")
    return file


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: Path, *extra: str) -> tuple[int, Path | None]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the SUT's scratch directory
    code = cli.main(["run", str(file), "--mode", "real", "--quiet", "--report-dir", str(tmp_path / "reports"),
                     *extra])
    latest = tmp_path / "reports" / "latest"
    return code, latest.resolve() if latest.exists() else None


def _journal(report: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (report / "journal.jsonl").read_text().splitlines()]


def test_a_started_sut_is_driven_over_http_and_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUT_TOKEN", "token-from-env")
    file = _scenario(tmp_path, headers='{Authorization: "Bearer {env.SUT_TOKEN}"}')
    code, report = _run(tmp_path, monkeypatch, file)
    assert code == 0, capsys.readouterr()
    assert report is not None
    operations = [e for e in _journal(report) if e["kind"] == "operation"]
    assert len(operations) == 4  # 2/s for 2 s
    assert all(o["operation"] == "sut_http" and o["vendor"] == "sut" and o["ok"] for o in operations)
    [scratch] = tmp_path.glob("ehrlab-sut-*")
    seen = json.loads((scratch / "seen.json").read_text())
    assert seen["posts"] == 4
    assert seen["auth"] == ["Bearer token-from-env"] * 4
    # the templated environment and PATH, nothing else of the lab's (Python itself may add LC_CTYPE)
    assert set(seen["env"]) - {"LC_CTYPE"} == {"EHR_URL", "PATH", "SECRET", "SUT_PORT", "SUT_SCRATCH"}
    assert str(seen["medplum"]).startswith("http://127.0.0.1:")
    assert str(seen["medplum"]).endswith("/fhir/R4")
    assert _gone(seen["pid"])  # stopped at the end of the run
    log = (report / "sut-sut-echo.log").read_text()  # copied into the report
    assert "configured with secret=***" in log  # the lab's client secret, which the SUT printed, masked
    assert "POST /ingest" in log
    assert "GET /health" in log
    for written in report.rglob("*"):  # neither the header's token nor the lab's secret reaches the reports
        if written.is_file():
            assert "token-from-env" not in written.read_text(errors="replace")


def test_a_sut_that_ignores_its_stop_signal_is_killed_after_the_grace(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    began = time.monotonic()  # real-time: the grace is the point
    code, _ = _run(tmp_path, monkeypatch, _scenario(tmp_path, args="--ignore-term", grace="0.5s"))
    assert code == 0
    [scratch] = tmp_path.glob("ehrlab-sut-*")
    assert _gone(json.loads((scratch / "seen.json").read_text())["pid"])
    assert time.monotonic() - began < 15.0  # 2 s of run, 0.5 s of grace, the lab's build (a loaded machine)


def _posted(tmp_path: Path) -> bool:
    for seen in tmp_path.glob("ehrlab-sut-*/seen.json"):
        try:
            return int(json.loads(seen.read_text())["posts"]) > 0
        except ValueError:  # caught mid-write
            return False
    return False


@pytest.mark.parametrize("phase", ["waiting-for-ready", "timeline"])
def test_an_interrupted_run_stops_its_sut(tmp_path: Path, phase: str) -> None:
    never_ready = phase == "waiting-for-ready"
    file = _scenario(tmp_path, duration="60s", args="--never-ready" if never_ready else "", within="60s")
    child = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(file), "--mode", "real", "--quiet",
                              "--report-dir", str(tmp_path / "reports")], cwd=REPO,
                             env={**os.environ, "TMPDIR": str(tmp_path)}, preexec_fn=default_sigint,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # real-time: waiting for a child process on the wall clock
        while time.monotonic() < deadline and not (
                list(tmp_path.glob("ehrlab-sut-*/seen.json")) if never_ready else _posted(tmp_path)):
            time.sleep(0.1)
        [seen] = tmp_path.glob("ehrlab-sut-*/seen.json")
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 130
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert _gone(json.loads(seen.read_text())["pid"])
    if not never_ready:
        assert (tmp_path / "reports" / "latest" / "sut-sut-echo.log").is_file()


def test_a_non_2xx_answer_is_an_operation_error_named_by_status(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = _run(tmp_path, monkeypatch, _scenario(tmp_path, path="/fail"))
    assert code == 1
    assert report is not None
    errors = {e["error"] for e in _journal(report) if e["kind"] == "operation"}
    assert errors == {"HTTP500"}


def test_a_sut_that_exits_at_once_is_inconclusive_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(tmp_path, monkeypatch, _scenario(tmp_path, args="--exit"))
    out = capsys.readouterr()
    assert code == 3
    assert report is not None
    assert "Traceback" not in out.err + out.out
    [scenario] = json.loads((report / "summary.json").read_text())["scenarios"]
    reason = scenario["reason"]
    assert "exited with code 3 before it was ready" in reason
    assert "fatal: no database configured" in reason
    assert "starting step 14" in reason
    assert "starting step 5 " not in reason + " "  # the last 10 lines only
    assert "configured with" not in reason
    assert "configured with secret=***" in (report / "sut-sut-echo.log").read_text()  # the lab's secret masked


def test_a_sut_never_ready_is_inconclusive_within_its_deadline(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    began = time.monotonic()  # real-time: the deadline is the point
    code, report = _run(tmp_path, monkeypatch, _scenario(tmp_path, args="--never-ready", within="1s"))
    assert code == 3
    assert report is not None
    assert time.monotonic() - began < 15.0  # 1 s of readiness, the lab's build and teardown; far below the default 20 s
    [scenario] = json.loads((report / "summary.json").read_text())["scenarios"]
    assert "not ready within 1 s" in scenario["reason"]
    assert "HTTP 503" in scenario["reason"]


def test_an_attached_sut_is_driven_and_never_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ECHO)], env={"SUT_PORT": str(port), "SUT_SCRATCH": str(tmp_path)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        file = _scenario(tmp_path, sut=f"\n  url: http://127.0.0.1:{port}\n  ready: {{within: 10s}}")
        code, report = _run(tmp_path, monkeypatch, file)
        assert code == 0
        assert report is not None
        assert server.poll() is None  # the lab did not start it, so it does not stop it
        assert json.loads((tmp_path / "seen.json").read_text())["posts"] == 4
    finally:
        server.terminate()
        server.wait(10)


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], file: Path,
             *args: str) -> str:
    async def never(*_: object, **__: object) -> None:
        raise AssertionError("the SUT was started or connected to")

    monkeypatch.setattr(sut_process, "start_sut", never)
    assert cli.main(["run", str(file), "--report-dir", str(tmp_path / "reports"), *args]) == 2
    assert not (tmp_path / "reports").exists()
    return capsys.readouterr().err


def test_virtual_mode_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(tmp_path, monkeypatch, capsys, _scenario(tmp_path), "--mode", "virtual")
    assert "sut: section needs --mode real" in err
    assert "Traceback" not in err


def test_a_time_scale_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(tmp_path, monkeypatch, capsys, _scenario(tmp_path), "--mode", "real", "--time-scale", "10")
    assert "needs --time-scale 1" in err


def test_a_remote_sut_url_is_refused_without_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    file = _scenario(tmp_path, sut="\n  url: http://10.20.30.40:8080")
    err = _refused(tmp_path, monkeypatch, capsys, file, "--mode", "real")
    assert "sut.url points at 10.20.30.40, outside loopback" in err
    assert "--allow-remote" in err


def test_an_unset_header_variable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SUT_TOKEN_UNSET", raising=False)
    file = _scenario(tmp_path, headers='{Authorization: "Bearer {env.SUT_TOKEN_UNSET}"}')
    err = _refused(tmp_path, monkeypatch, capsys, file, "--mode", "real")
    assert "SUT_TOKEN_UNSET is not set in the environment" in err


def test_an_unknown_placeholder_is_refused_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _scenario(tmp_path, env='{SUT_PORT: "{sut.port}", EHR_URL: "{medplum.fhir_url}"}')
    assert cli.main(["validate", str(file)]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert f"{file}:8: field 'sut.env.EHR_URL': unknown placeholder {{medplum.fhir_url}}" in text, text
    assert "Traceback" not in text


@pytest.mark.parametrize(("sut", "line", "field", "message"), [
    ('\n  command: [x]\n  env: {A: "{seed"}', 8, "sut.env.A", "a lone '{'"),
    ('\n  command: [x]\n  env: {A: "{Seed}"}', 8, "sut.env.A", "{Seed} is not a placeholder name"),
    ('\n  command: [x]\n  env: {A: "{env.HOME}"}', 8, "sut.env.A", "{env.NAME} is allowed in headers only"),
    ("\n  url: http://127.0.0.1:{port}", 7, "sut.url", "{port} in sut.url needs sut.command"),
    ('\n  command: [x]\n  url: "http://127.0.0.1:{sut.port}"', 8, "sut.url", "only {port}"),
    ('\n  url: http://127.0.0.1:1\n  env: {A: "1"}', 8, "sut.env", "sut.env needs sut.command"),
    ("\n  command: []", 7, "sut.command", "at least 1 item"),
], ids=["lone-brace", "bad-name", "env-outside-headers", "port-when-attached", "url-placeholder", "env-no-command",
        "empty-command"])
def test_a_bad_sut_section_is_refused_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], sut: str,
                                                  line: int, field: str, message: str) -> None:
    file = _scenario(tmp_path, sut=sut)
    assert cli.main(["validate", str(file)]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{file}:{line}: field '{field}': " in text, text
    assert message in text, text


def test_a_sut_http_stream_needs_a_sut_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _scenario(tmp_path, sut="\n  url: http://127.0.0.1:1")
    file.write_text(file.read_text().replace("sut:\n  url: http://127.0.0.1:1\n", ""))
    assert cli.main(["validate", str(file)]) == 2
    out = capsys.readouterr()
    assert "field 'workload[0].operation': workload[0] sut_http needs a sut: section" in out.out + out.err


def test_templates_fill_in_values_and_keep_doubled_braces() -> None:
    from harness.sut.template import render

    assert render('{{"id": "{{p-{seed}}}"}} {sut.port}', {"seed": "7", "sut.port": "80"}) == '{"id": "{p-7}"} 80'


def test_a_sut_env_vendor_outside_setup_vendors_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _scenario(tmp_path)
    file.write_text(file.read_text().replace("\nsut:", "\nsetup: {vendors: [epic]}\nsut:", 1))
    assert cli.main(["validate", str(file)]) == 2
    out = capsys.readouterr()
    assert (f"{file}:9: field 'sut.env': sut.env refers to vendor 'medplum', which setup.vendors does not "
            "configure (epic)") in out.out + out.err, out
