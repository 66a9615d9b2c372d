"""Crash safety in real processes, checked Jepsen-style (total queue): two worker processes drain a few
hundred jobs; one is killed with SIGKILL in the middle of its jobs; the other takes its stalled jobs back
and finishes. Nothing acknowledged is lost, nothing unexpected runs, and the only duplicates are jobs the
killed worker had run but not yet recorded (at most its concurrency). The Redis run also restarts the
server (SIGKILL, AOF with fsync always) while the surviving worker is draining.

Real processes on the real clock, bounded: a few seconds each.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.clock import RealClock
from integrations.queue import JobQueue, JobSpec, SqliteStore, check_total_queue
from integrations.queue.redis_store import RedisStore
from integrations.queue.store import JobStore
from tests.integrations.queue.redis_server import RedisServer, missing_reason, redis_binary, redis_required

JOBS = 300
CONCURRENCY = 5
WORKER = Path(__file__).with_name("crash_worker.py")
DEADLINE_S = 30.0


def enqueue(store: JobStore) -> list[str]:
    async def main() -> list[str]:
        queue = JobQueue(store, RealClock())
        jobs = await queue.add_bulk([JobSpec("crash-job", i) for i in range(JOBS)])
        await queue.close()
        return [job.id for job in jobs]

    return asyncio.run(main())


@dataclass
class Run:
    store: str
    directory: Path

    def spawn(self, name: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(WORKER), "--store", self.store, "--queue", "crash", "--name", name,
             "--log", str(self.directory / f"{name}.log"), "--concurrency", str(CONCURRENCY), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def lines(self, name: str) -> list[str]:
        path = self.directory / f"{name}.log"
        return path.read_text().split() if path.exists() else []


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # real processes


def crash_and_drain(run: Run, ids: list[str], during: Callable[[], None] = lambda: None) -> dict[str, int]:
    """Start workers a (slower) and b; SIGKILL a once a third of the jobs ran; `during()`; b drains."""
    a = run.spawn("a", "--job-s", "0.01", "--after-s", "0.01")
    b = run.spawn("b", "--until-drained")
    try:
        wait_for(lambda: len(run.lines("a")) + len(run.lines("b")) >= JOBS // 3 and len(run.lines("a")) > 0,
                 "a third of the jobs")
        a.send_signal(signal.SIGKILL)
        a.communicate(timeout=10)
        during()
        out, err = b.communicate(timeout=DEADLINE_S)
        assert b.returncode == 0, err
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
                process.communicate()
    events: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    killed, survivor = run.lines("a"), run.lines("b")
    result = check_total_queue(ids, killed + survivor)
    assert result.valid, result.summary()
    assert result.lost == ()
    assert result.unexpected == ()
    assert len(result.duplicated) <= CONCURRENCY, result.summary()  # only jobs a ran but had not recorded
    assert all(n == 2 and job in killed for job, n in result.duplicated.items())
    if result.duplicated:  # a ran jobs it never acknowledged: only a stalled-job recovery can have rerun them
        assert events.get("JobStalled", 0) >= 1
    # (with no duplicate, the SIGKILL may have landed between a's jobs, leaving nothing of a's to take back)
    return events


@pytest.mark.real_network
def test_sqlite_worker_killed_mid_run_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    ids = enqueue(SqliteStore(db, "crash"))
    crash_and_drain(Run(f"sqlite:{db}", tmp_path), ids)
    stats = asyncio.run(SqliteStore(db, "crash").stats())
    assert (stats.completed, stats.failed, stats.pending) == (JOBS, 0, 0)


@pytest.mark.real_network
def test_redis_worker_killed_and_server_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    if redis_binary() is None:
        if redis_required():
            pytest.fail(missing_reason())
        pytest.skip(missing_reason())
    with RedisServer(tmp_path / "redis", appendfsync="always") as server:
        ids = enqueue(RedisStore.connect(server.url, "crash", blocking=True))
        events = crash_and_drain(Run(f"redis:{server.url}", tmp_path), ids, during=server.restart)
        assert events.get("QueueStoreUnavailable", 0) >= 1  # b saw the restart
        store = RedisStore.connect(server.url, "crash", blocking=True)
        stats = asyncio.run(store.stats())
        asyncio.run(store.close())
        assert (stats.completed, stats.failed, stats.pending) == (JOBS, 0, 0)
