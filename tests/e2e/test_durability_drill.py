"""The queue's durability drill, from the command line only (README "Queue durability drill"), for the SQLite and
the Redis store: `ehrlab serve medplum`, `ehrlab enqueue` 200 sync jobs, `ehrlab worker` killed with SIGKILL twice
mid-drain and restarted, then drained. Judged at the fake Medplum: every record of the application database is
there exactly once (counted by its identifier), every demo patient exactly once, and `ehrlab queue stats` shows
every job completed and no record left unsynced.

Mid-drain is shown, not assumed: after each kill the restarted worker's first progress line (the queue's counts
as the kill left them, the same as `ehrlab queue stats` prints) must show completed jobs and jobs not completed.
The simulator adds 50-100 ms to every call, so the worker has jobs in flight when it is killed (they stall and
run again after `--stall-timeout 1`; the last worker must report taking some back). `--max-stalled 5`: a job
caught by both kills runs again instead of failing (BullMQ's default of 1 would fail it, the right production
behaviour for a job that kills its workers, not what this drill is about).

Real processes on the real clock: about 15-25 s per store on a loaded 2-core machine (most of it is starting
seven `ehrlab` processes).
"""

from __future__ import annotations

import ipaddress
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import IO

import httpx
import pytest

from harness.cli import main
from integrations.sync.deid import ENCOUNTER_ID_SYSTEM, OBSERVATION_ID_SYSTEM, PATIENT_TOKEN_SYSTEM, fhir_id
from tests.e2e.helpers import REPO, default_sigint
from tests.integrations.queue.redis_server import RedisServer, missing_reason, redis_binary, redis_required

JOBS = 200
SEED = 14
DEADLINE_S = 60.0  # any one wait; the whole drill takes far less
KILL_AT = (30, 90)  # queue-wide completed jobs before the first and the second SIGKILL
EHRLAB = [sys.executable, "-m", "harness.cli"]


@dataclass(frozen=True)
class Medplum:
    base_url: str
    client_id: str
    secret: str
    admin_token: str


class Lines:
    """A child's stdout, line by line, read in a thread so a wait has a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: Queue[str | None] = Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Once the child is gone: wait for the end of its output (into `seen`), so the pipe is closed with no
        reader on it."""
        self._thread.join(timeout=DEADLINE_S)
        while (line := self._queue.get_nowait()) is not None:
            self.seen.append(line)

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n{''.join(self.seen)}") from None
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found


def ehrlab(*args: str) -> str:
    proc = subprocess.run([*EHRLAB, *args], cwd=REPO, capture_output=True, text=True, timeout=DEADLINE_S,
                          check=False)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


@contextmanager
def served_medplum(log: Path) -> Iterator[Medplum]:
    with log.open("w") as stderr, subprocess.Popen(
            [*EHRLAB, "serve", "medplum", "--seed", str(SEED), "--patients", "1"], cwd=REPO, stdout=subprocess.PIPE,
            stderr=stderr, text=True) as proc:  # stderr to a file: a pipe nobody reads could fill and block it
        try:
            assert proc.stdout is not None
            lines = Lines(proc.stdout)
            lines.until("admin token")
            text = "".join(lines.seen)
            found = {key: re.search(rf"{key}\s+(\S+)", text) for key in ("base URL", "client id", "secret",
                                                                          "admin token")}
            values = {key: match.group(1) for key, match in found.items() if match is not None}
            assert len(values) == 4, text
            yield Medplum(values["base URL"], values["client id"], values["secret"], values["admin token"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            lines.join()


@contextmanager
def fhir_client(medplum: Medplum) -> Iterator[httpx.Client]:
    """A client of the simulator's FHIR API with the printed client's token."""
    with httpx.Client(base_url=f"{medplum.base_url}/fhir/R4", timeout=30) as client:
        token = httpx.post(f"{medplum.base_url}/oauth2/token", timeout=30, data={
            "grant_type": "client_credentials", "client_id": medplum.client_id, "client_secret": medplum.secret})
        assert token.status_code == 200, token.text
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def identifiers(client: httpx.Client, resource_type: str, system: str) -> Counter[str]:
    """How many resources of the type Medplum holds per identifier value of `system` (all pages)."""
    found: Counter[str] = Counter()
    url: str | None = f"/{resource_type}?_count=100"
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, page.text
        bundle = page.json()
        for entry in bundle.get("entry", []):
            for identifier in entry["resource"].get("identifier", []):
                if identifier.get("system") == system:
                    found[identifier["value"]] += 1
        url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    return found


SYSTEMS = {"Encounter": ENCOUNTER_ID_SYSTEM, "Observation": OBSERVATION_ID_SYSTEM, "Patient": PATIENT_TOKEN_SYSTEM}


def discrepancies(client: httpx.Client, kind: str, ids: set[str]) -> tuple[set[str], dict[str, int], set[str]]:
    """Against the records' ids: those Medplum lacks (lost), holds more than once (duplicated), holds unasked."""
    held = identifiers(client, kind, SYSTEMS[kind])
    return ids - set(held), {value: n for value, n in held.items() if n > 1}, set(held) - ids


def queue_counts(stats: str) -> dict[str, int]:
    """The job counts of `ehrlab queue stats`'s first line."""
    line = stats.splitlines()[0]
    return {name: int(value) for name, value in re.findall(r"(\w+) (\d+)", line.split("): ", 1)[1])}


def progress(line: str) -> dict[str, int]:
    """The queue-wide counts of a worker's progress line (`completed 57  failed 0  waiting 144 ...  (this ...)`)."""
    return {name: int(value) for name, value in re.findall(r"(\w+) (\d+)", line.split("(", 1)[0])}


def check_mid_drain(first_line: str, killed_at: int, total: int) -> None:
    """A restarted worker's first progress line is the queue as the kill left it: some done, some not."""
    completed = progress(first_line)["completed"]
    assert killed_at <= completed < total, first_line


def kill_mid_drain(worker: list[str], db: Path, at: int, total: int, killed_at: int | None) -> None:
    with db.with_name(f"worker-{at}.err").open("w") as stderr, subprocess.Popen(
            worker, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True) as proc:
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        try:
            first = lines.until(r"^completed (\d+)")
            if killed_at is not None:
                check_mid_drain(first.string, killed_at, total)
            completed = int(first.group(1))
            while completed < at:
                completed = int(lines.until(r"^completed (\d+)").group(1))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            lines.join()
    assert proc.returncode == -signal.SIGKILL


def drill(tmp_path: Path, store: list[str]) -> None:
    db = tmp_path / "app.db"
    with served_medplum(tmp_path / "serve.err") as medplum:
        latency = httpx.put(f"{medplum.base_url}/admin/chaos/latency", json={"min_ms": 50, "max_ms": 100},
                            headers={"Authorization": f"Bearer {medplum.admin_token}"}, timeout=30)
        assert latency.status_code == 200, latency.text
        added = re.search(r"added (\d+) sync jobs", ehrlab("enqueue", "--db", str(db), "--count", str(JOBS),
                                                          "--seed", str(SEED), *store))
        assert added is not None
        total = int(added.group(1))
        assert total >= JOBS
        worker = [*EHRLAB, "worker", "--db", str(db), "--medplum-url", medplum.base_url, "--seed", str(SEED),
                  "--concurrency", "5", "--rate-limit", "0", "--stall-timeout", "1", "--max-stalled", "5",
                  "--progress", "0.1", *store]
        killed_at: int | None = None
        for at in KILL_AT:
            kill_mid_drain(worker, db, at, total, killed_at)
            killed_at = at
        last = subprocess.run([*worker, "--until-drained"], cwd=REPO, capture_output=True, text=True,
                              timeout=DEADLINE_S, check=False)
        assert last.returncode == 0, (last.stdout, last.stderr)
        check_mid_drain(next(line for line in last.stdout.splitlines() if line.startswith("completed ")), KILL_AT[-1],
                        total)
        drained = re.search(rf"drained: completed {total}, failed 0 .*took back (\d+) stalled", last.stdout)
        assert drained is not None, last.stdout
        assert int(drained.group(1)) >= 1  # the second kill left jobs in flight: this worker ran them again

        stats = ehrlab("queue", "stats", "--db", str(db), *store)
        assert queue_counts(stats) == {"completed": total, "failed": 0, "waiting": 0, "active": 0,
                                           "delayed": 0, "paused": 0}, stats
        assert stats.count("never synced 0") == 2, stats

        with sqlite3.connect(db) as app:
            expected = {
                "Encounter": {row[0] for row in app.execute("SELECT id FROM encounters")},
                "Observation": {row[0] for row in app.execute("SELECT id FROM observations")},
                "Patient": {row[0] for row in app.execute("SELECT token FROM patient_tokens")},
            }
        assert sum(len(ids) for kind, ids in expected.items() if kind != "Patient") == total
        with fhir_client(medplum) as client:
            for kind, ids in expected.items():
                assert discrepancies(client, kind, ids) == (set(), {}, set()), kind

            # The judge sees a loss and a duplicate: delete one record's resource, create a second of another
            gone, twice = sorted(expected["Observation"])[:2]
            assert client.delete(f"/Observation/{fhir_id(gone)}").status_code in (200, 204)
            copy = client.get(f"/Observation/{fhir_id(twice)}").json()
            copy.pop("id")
            copy.pop("meta", None)
            assert client.post("/Observation", json=copy).status_code == 201
            assert discrepancies(client, "Observation", expected["Observation"]) == ({gone}, {twice: 2}, set())


@pytest.mark.real_network
def test_sqlite_store_loses_and_duplicates_nothing_across_two_kills(tmp_path: Path) -> None:
    drill(tmp_path, [])


@pytest.mark.real_network
def test_redis_store_loses_and_duplicates_nothing_across_two_kills(tmp_path: Path) -> None:
    if redis_binary() is None:
        if redis_required():
            pytest.fail(missing_reason())
        pytest.skip(missing_reason())
    with RedisServer(tmp_path / "redis") as redis:
        drill(tmp_path, ["--redis", redis.url])


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any connect to an address outside loopback raises inside the test process (and is recorded)."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if not isinstance(host, str) or not ipaddress.ip_address(host).is_loopback:
            attempts.append(address)
            raise OSError(f"test: connect to {address!r} refused before it left the process")
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.mark.parametrize(("args", "message"), [
    (["worker", "--db", "{db}", "--medplum-url", "http://10.1.2.3:8000", "--seed", "1"],
     "--medplum-url points at 10.1.2.3, outside loopback"),
    (["worker", "--db", "{db}", "--medplum-url", "http://medplum.example:8000", "--seed", "1"],
     "outside loopback"),
    (["worker", "--db", "{db}", "--redis", "redis://10.1.2.3:6379/0", "--medplum-url", "http://127.0.0.1:1",
      "--seed", "1"], "--redis points at 10.1.2.3, outside loopback"),
    (["enqueue", "--db", "{db}", "--redis", "redis://redis.example:6379/0", "--count", "5"],
     "outside loopback"),
    (["queue", "stats", "--db", "{db}", "--redis", "redis://10.1.2.3:6379/0"], "outside loopback"),
    (["worker", "--db", "{missing}", "--medplum-url", "http://127.0.0.1:1", "--seed", "1"], "no such database"),
    (["queue", "stats", "--db", "{missing}"], "no such database"),
    (["enqueue", "--db", "/no/such/dir/app.db", "--count", "5"], "must be a file path in an existing directory"),
    (["enqueue", "--db", "{db}", "--count", "0"], "--count must be between 1 and"),
    (["enqueue", "--db", "{db}", "--redis", "http://127.0.0.1:6379", "--count", "5"], "--redis must be a URL"),
    (["worker", "--db", "{db}", "--medplum-url", "http://127.0.0.1:1", "--seed", "1", "--stall-timeout", "nan"],
     "--stall-timeout must be between"),
    (["worker", "--db", "{db}", "--medplum-url", "http://127.0.0.1:1", "--seed", "1", "--concurrency", "0"],
     "--concurrency must be between"),
    (["worker", "--db", "{db}", "--medplum-url", "ftp://127.0.0.1/", "--seed", "1"], "--medplum-url must be a URL"),
])
def test_bad_input_is_refused_with_exit_2_and_one_line_before_any_connection(
        args: list[str], message: str, tmp_path: Path, loopback_only: list[object],
        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "app.db"
    db.touch()
    filled = [a.format(db=db, missing=tmp_path / "missing.db") for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert loopback_only == []  # refused before any connect, even a refused one
    assert not (tmp_path / "missing.db").exists()


def test_allow_remote_is_the_opt_in_and_the_fixture_sees_the_connect_it_stops(
        tmp_path: Path, loopback_only: list[object], capsys: pytest.CaptureFixture[str]) -> None:
    """With --allow-remote the same command does try 10.1.2.3 (stopped inside this process by the fixture), so
    the refusals above are the check's doing, not a fixture that sees nothing."""
    db = tmp_path / "app.db"
    db.touch()
    code = main(["queue", "stats", "--db", str(db), "--redis", "redis://10.1.2.3:6379/0", "--allow-remote"])
    assert code == 2
    assert "cannot reach the job queue at redis://10.1.2.3:6379/0" in capsys.readouterr().err
    assert [address[0] for address in loopback_only if isinstance(address, tuple)][:1] == ["10.1.2.3"]


@pytest.mark.real_network
@pytest.mark.parametrize(("sig", "extra", "code"), [
    (signal.SIGTERM, [], 0), (signal.SIGINT, [], 0), (signal.SIGTERM, ["--until-drained"], 130)])
def test_worker_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path: Path, sig: signal.Signals, extra: list[str],
                                                    code: int) -> None:
    """An idle worker stops in order with 0; one asked to drain (one job whose Medplum is never reached: it
    retries until the 5 s given to running jobs are over) with 130."""
    db = tmp_path / "app.db"
    if extra:
        ehrlab("enqueue", "--db", str(db), "--count", "1")
    else:
        db.touch()  # an empty application database: nothing to do
    worker = [*EHRLAB, "worker", "--db", str(db), "--medplum-url", "http://127.0.0.1:9", "--seed", "1",
              "--progress", "0.1", *extra]
    with subprocess.Popen(worker, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as proc:
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        lines.until(r"^completed 0 " if extra else r"^drained: completed 0, failed 0")
        proc.send_signal(sig)
        assert proc.wait(timeout=DEADLINE_S) == code
        lines.join()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    assert any(line.startswith(f"stopping ({sig.name})") for line in lines.seen), lines.seen
    assert lines.seen[-1].startswith("stopped (this worker: ")


def test_enqueue_to_an_unreachable_queue_exits_2_and_leaves_no_new_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "new.db"
    assert main(["enqueue", "--db", str(db), "--count", "3", "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot reach the job queue at redis://127.0.0.1:1/0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
