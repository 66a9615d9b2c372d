"""The embedded store: one SQLite file, durable across a killed process, shared safely by several worker
processes on one host.

- WAL journal, so readers never block the writer; `synchronous=NORMAL` by default, which survives a
  killed process (a power loss may lose the last transactions; pass `synchronous="FULL"` for that).
- Every operation is one short transaction opened with `BEGIN IMMEDIATE`: the write lock is taken
  before anything is read, so two workers can never claim the same job; a worker that finds the file
  locked waits up to `busy_timeout_s` (then `StoreUnavailable`).
- The stdlib `sqlite3`, called synchronously from the event loop, not `aiosqlite`: aiosqlite runs every
  call on a thread, and in virtual mode the loop must not wait on threads (looptime would have to step
  real time while they run, `harness/clock.py`). The transactions take tens of microseconds, less than
  the hop to a thread would; the price is that a claim waiting on another process's lock blocks this
  loop for that wait (bounded by `busy_timeout_s`, in practice well under a millisecond).

Schema: one `jobs` table for every queue in the file. `score` orders a job within its state, as the
Redis store's sorted sets do: the queue position for waiting jobs, the due time for delayed ones, the
lock expiry for active ones and the finish time for completed and failed ones, so one index serves
every claim, promotion, stalled check and retention pass.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from integrations.queue.errors import InvalidJobState, JobNotFound, StoreUnavailable
from integrations.queue.model import (
    STALLED_REASON,
    Backoff,
    Claim,
    ClaimRequest,
    Completed,
    Completion,
    Finished,
    Job,
    JobState,
    KeepJobs,
    NewJob,
    Promoted,
    QueueStats,
    Stalled,
    load_json,
    to_ms,
)
from integrations.queue.store import JobStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    queue TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    next_id INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    score INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    backoff_kind TEXT NOT NULL,
    backoff_delay_ms INTEGER NOT NULL,
    backoff_jitter REAL NOT NULL,
    attempts_made INTEGER NOT NULL DEFAULT 0,
    stalled_count INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    due_ms INTEGER,
    processed_ms INTEGER,
    finished_ms INTEGER,
    failed_reason TEXT,
    result TEXT,
    lock_token TEXT,
    UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (queue, state, score);
CREATE TABLE IF NOT EXISTS starts (queue TEXT NOT NULL, t_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS starts_by_time ON starts (queue, t_ms);
"""

_COLUMNS = ("id, name, data, state, attempts, backoff_kind, backoff_delay_ms, backoff_jitter, attempts_made, "
            "stalled_count, created_ms, due_ms, processed_ms, finished_ms, failed_reason, result")

_Row = tuple[str, str, str, str, int, str, int, float, int, int, int, int | None, int | None, int | None,
             str | None, str | None]


def _job(row: _Row) -> Job:
    (job_id, name, data, state, attempts, kind, delay_ms, jitter, made, stalled, created, due, processed,
     finished, reason, result) = row
    return Job(id=job_id, name=name, data=load_json(data), state=JobState(state), attempts=attempts,
               backoff=Backoff(kind="fixed" if kind == "fixed" else "exponential", delay_s=delay_ms / 1000,
                               jitter=jitter),
               attempts_made=made, stalled_count=stalled, created_ms=created, due_ms=due, processed_ms=processed,
               finished_ms=finished, failed_reason=reason, result=None if result is None else load_json(result))


class SqliteStore:
    """One queue in a SQLite file (several queues may share a file)."""

    def __init__(self, path: str | Path, queue: str, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
                 busy_timeout_s: float = 5.0) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self._queue = queue
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_s)
        with self._errors("open"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            with self._tx("open") as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR IGNORE INTO queues (queue) VALUES (?)", (queue,))

    @property
    def queue(self) -> str:
        return self._queue

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # "database is locked", disk I/O: the one boundary
            raise StoreUnavailable(f"queue {self._queue!r}: sqlite {operation}: {exc}", queue=self._queue,
                                   operation=operation) from exc

    @contextmanager
    def _tx(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._errors(operation):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _next(self, db: sqlite3.Connection, counter: Literal["next_id", "next_seq"], n: int = 1) -> int:
        """Reserve `n` values of a counter; returns the first."""
        (value,) = db.execute(f"UPDATE queues SET {counter} = {counter} + ? WHERE queue = ? RETURNING {counter}",
                              (n, self._queue)).fetchone()
        return int(value) - n + 1

    def _select(self, db: sqlite3.Connection, where: str, args: Sequence[object]) -> list[Job]:
        rows: list[_Row] = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE queue = ? AND {where}",
                                      (self._queue, *args)).fetchall()
        return [_job(row) for row in rows]

    async def add(self, jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        out: list[tuple[Job, bool]] = []
        with self._tx("add") as db:
            for new in jobs:
                if new.id is None:
                    job_id = str(self._next(db, "next_id"))
                else:
                    job_id = new.id
                    existing = self._select(db, "id = ?", (job_id,))
                    if existing:
                        out.append((existing[0], False))
                        continue
                delayed = new.due_ms is not None and new.due_ms > new.created_ms
                state = JobState.DELAYED if delayed else JobState.WAITING
                score = new.due_ms if delayed and new.due_ms is not None else self._next(db, "next_seq")
                due = new.due_ms if delayed else None
                db.execute(
                    "INSERT INTO jobs (queue, id, name, data, state, score, attempts, backoff_kind, backoff_delay_ms,"
                    " backoff_jitter, created_ms, due_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self._queue, job_id, new.name, new.data, state.value, score, new.attempts, new.backoff.kind,
                     to_ms(new.backoff.delay_s), new.backoff.jitter, new.created_ms, due))
                out.append((Job(id=job_id, name=new.name, data=load_json(new.data), state=state,
                                attempts=new.attempts, backoff=new.backoff, attempts_made=0, stalled_count=0,
                                created_ms=new.created_ms, due_ms=due, processed_ms=None, finished_ms=None,
                                failed_reason=None, result=None), True))
        return out

    async def get(self, job_id: str) -> Job | None:
        with self._errors("get"):
            found = self._select(self._db, "id = ?", (job_id,))
        return found[0] if found else None

    async def claim(self, request: ClaimRequest) -> Claim:
        now = request.now_ms
        with self._tx("claim") as db:
            promoted = [Promoted(id=row[0], name=row[1]) for row in db.execute(
                "SELECT id, name FROM jobs WHERE queue = ? AND state = 'delayed' AND score <= ? ORDER BY score, id",
                (self._queue, now)).fetchall()]
            if promoted:
                first = self._next(db, "next_seq", len(promoted))
                db.executemany("UPDATE jobs SET state = 'waiting', score = ?, due_ms = NULL WHERE queue = ? AND id = ?",
                               [(first + i, self._queue, p.id) for i, p in enumerate(promoted)])
            (paused,) = db.execute("SELECT paused FROM queues WHERE queue = ?", (self._queue,)).fetchone()
            jobs: list[Job] = []
            wake: int | None = None
            limited = False
            n = request.limit
            if not paused:
                if request.rate_max is not None and request.rate_window_ms is not None:
                    db.execute("DELETE FROM starts WHERE queue = ? AND t_ms <= ?",
                               (self._queue, now - request.rate_window_ms))
                    count, oldest = db.execute("SELECT count(*), min(t_ms) FROM starts WHERE queue = ?",
                                               (self._queue,)).fetchone()
                    if count >= request.rate_max:
                        n = 0
                        if db.execute("SELECT 1 FROM jobs WHERE queue = ? AND state = 'waiting' LIMIT 1",
                                      (self._queue,)).fetchone():
                            limited = True
                            wake = int(oldest) + request.rate_window_ms
                    else:
                        n = min(n, request.rate_max - count)
                if request.global_concurrency is not None and n > 0:
                    (active,) = db.execute("SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'",
                                           (self._queue,)).fetchone()
                    n = min(n, request.global_concurrency - active)
                if n > 0:
                    jobs = self._select(db, "state = 'waiting' ORDER BY score LIMIT ?", (n,))
                    db.executemany(
                        "UPDATE jobs SET state = 'active', score = ?, lock_token = ?, processed_ms = ?"
                        " WHERE queue = ? AND id = ?",
                        [(request.lock_until_ms, request.token, now, self._queue, job.id) for job in jobs])
                    if request.rate_max is not None:
                        db.executemany("INSERT INTO starts (queue, t_ms) VALUES (?, ?)",
                                       [(self._queue, now)] * len(jobs))
            (due,) = db.execute("SELECT min(score) FROM jobs WHERE queue = ? AND state = 'delayed'",
                                (self._queue,)).fetchone()
        if due is not None:
            wake = int(due) if wake is None else min(wake, int(due))
        active = [Job(id=j.id, name=j.name, data=j.data, state=JobState.ACTIVE, attempts=j.attempts,
                      backoff=j.backoff, attempts_made=j.attempts_made, stalled_count=j.stalled_count,
                      created_ms=j.created_ms, due_ms=None, processed_ms=now, finished_ms=None,
                      failed_reason=j.failed_reason, result=None) for j in jobs]
        return Claim(jobs=active, promoted=promoted, wake_ms=wake, paused=bool(paused), rate_limited=limited)

    async def extend_locks(self, locks: Sequence[tuple[str, str]], until_ms: int) -> list[str]:
        lost: list[str] = []
        with self._tx("extend_locks") as db:
            for job_id, token in locks:
                cursor = db.execute("UPDATE jobs SET score = ? WHERE queue = ? AND id = ? AND state = 'active'"
                                    " AND lock_token = ?", (until_ms, self._queue, job_id, token))
                if cursor.rowcount == 0:
                    lost.append(job_id)
        return lost

    async def complete(self, completions: Sequence[Completion], now_ms: int, keep: KeepJobs) -> Completed:
        with self._tx("complete") as db:
            ok = [db.execute(
                "UPDATE jobs SET state = 'completed', score = ?, finished_ms = ?, result = ?, lock_token = NULL"
                " WHERE queue = ? AND id = ? AND state = 'active' AND lock_token = ?",
                (now_ms, now_ms, c.result, self._queue, c.job_id, c.token)).rowcount == 1 for c in completions]
            removed = self._trim(db, JobState.COMPLETED, now_ms, keep, None) if any(ok) else 0
        return Completed(ok=ok, removed=removed)

    async def retry_later(self, job_id: str, token: str, now_ms: int, due_ms: int, reason: str) -> Finished:
        with self._tx("retry_later") as db:
            delayed = due_ms > now_ms
            score = due_ms if delayed else self._next(db, "next_seq")
            cursor = db.execute(
                "UPDATE jobs SET state = ?, score = ?, due_ms = ?, attempts_made = attempts_made + 1,"
                " failed_reason = ?, lock_token = NULL WHERE queue = ? AND id = ? AND state = 'active'"
                " AND lock_token = ?",
                ("delayed" if delayed else "waiting", score, due_ms if delayed else None, reason, self._queue,
                 job_id, token))
            return Finished(ok=cursor.rowcount == 1)

    async def fail(self, job_id: str, token: str, now_ms: int, reason: str, keep: KeepJobs) -> Finished:
        with self._tx("fail") as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'failed', score = ?, finished_ms = ?, attempts_made = attempts_made + 1,"
                " failed_reason = ?, lock_token = NULL WHERE queue = ? AND id = ? AND state = 'active'"
                " AND lock_token = ?", (now_ms, now_ms, reason, self._queue, job_id, token))
            if cursor.rowcount == 0:
                return Finished(ok=False)
            return Finished(ok=True, removed=self._trim(db, JobState.FAILED, now_ms, keep, None))

    async def recover_stalled(self, now_ms: int, max_stalled_count: int, keep: KeepJobs) -> list[Stalled]:
        out: list[Stalled] = []
        with self._tx("recover_stalled") as db:
            rows = db.execute("SELECT id, name, stalled_count FROM jobs WHERE queue = ? AND state = 'active'"
                              " AND score < ? ORDER BY score DESC, id DESC", (self._queue, now_ms)).fetchall()
            for job_id, name, stalled_count in rows:  # newest first, each to the front: the oldest ends up first
                count = int(stalled_count) + 1
                if count > max_stalled_count:
                    db.execute("UPDATE jobs SET state = 'failed', score = ?, finished_ms = ?, stalled_count = ?,"
                               " failed_reason = ?, lock_token = NULL WHERE queue = ? AND id = ?",
                               (now_ms, now_ms, count, STALLED_REASON, self._queue, job_id))
                else:
                    (front,) = db.execute("SELECT min(score) FROM jobs WHERE queue = ? AND state = 'waiting'",
                                          (self._queue,)).fetchone()
                    score = self._next(db, "next_seq") if front is None else int(front) - 1
                    db.execute("UPDATE jobs SET state = 'waiting', score = ?, stalled_count = ?, lock_token = NULL"
                               " WHERE queue = ? AND id = ?", (score, count, self._queue, job_id))
                out.append(Stalled(id=job_id, name=name, stalled_count=count, failed=count > max_stalled_count))
            if any(s.failed for s in out):
                self._trim(db, JobState.FAILED, now_ms, keep, None)
        out.reverse()
        return out

    async def retry_failed(self, job_id: str | None, now_ms: int) -> list[Job]:
        with self._tx("retry_failed") as db:
            if job_id is not None:
                found = self._select(db, "id = ?", (job_id,))
                if not found:
                    raise JobNotFound(job_id, queue=self._queue)
                if found[0].state != JobState.FAILED:
                    raise InvalidJobState(job_id, found[0].state.value, "failed", queue=self._queue)
                jobs = found
            else:
                jobs = self._select(db, "state = 'failed' ORDER BY score, id", ())
            if jobs:
                first = self._next(db, "next_seq", len(jobs))
                db.executemany(
                    "UPDATE jobs SET state = 'waiting', score = ?, attempts_made = 0, stalled_count = 0,"
                    " failed_reason = NULL, finished_ms = NULL WHERE queue = ? AND id = ?",
                    [(first + i, self._queue, job.id) for i, job in enumerate(jobs)])
        return jobs

    def _trim(self, db: sqlite3.Connection, state: JobState, now_ms: int, keep: KeepJobs, limit: int | None) -> int:
        if state not in (JobState.COMPLETED, JobState.FAILED):
            raise ValueError(f"only completed and failed jobs are trimmed, not {state.value}")
        removed = 0
        budget = -1 if limit is None else limit
        if keep.age_s is not None:
            removed += db.execute(
                "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = ? AND state = ? AND score < ?"
                " ORDER BY score LIMIT ?)", (self._queue, state.value, now_ms - to_ms(keep.age_s), budget)).rowcount
        if keep.count is not None and (limit is None or removed < limit):
            if limit is None:
                removed += db.execute(
                    "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = ? AND state = ?"
                    " ORDER BY score DESC, rowid DESC LIMIT -1 OFFSET ?)",
                    (self._queue, state.value, keep.count)).rowcount
            else:
                (total,) = db.execute("SELECT count(*) FROM jobs WHERE queue = ? AND state = ?",
                                      (self._queue, state.value)).fetchone()
                excess = min(max(0, total - keep.count), limit - removed)
                removed += db.execute(
                    "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE queue = ? AND state = ?"
                    " ORDER BY score, rowid LIMIT ?)", (self._queue, state.value, excess)).rowcount
        return removed

    async def trim(self, state: JobState, now_ms: int, keep: KeepJobs, limit: int | None = None) -> int:
        with self._tx("trim") as db:
            return self._trim(db, state, now_ms, keep, limit)

    async def set_paused(self, paused: bool) -> bool:
        with self._tx("set_paused") as db:
            return db.execute("UPDATE queues SET paused = ? WHERE queue = ? AND paused != ?",
                              (int(paused), self._queue, int(paused))).rowcount == 1

    async def is_paused(self) -> bool:
        with self._errors("is_paused"):
            (paused,) = self._db.execute("SELECT paused FROM queues WHERE queue = ?", (self._queue,)).fetchone()
        return bool(paused)

    async def stats(self) -> QueueStats:
        with self._errors("stats"):
            counts = dict(self._db.execute("SELECT state, count(*) FROM jobs WHERE queue = ? GROUP BY state",
                                           (self._queue,)).fetchall())
            (paused,) = self._db.execute("SELECT paused FROM queues WHERE queue = ?", (self._queue,)).fetchone()
        waiting = int(counts.get("waiting", 0))
        return QueueStats(waiting=0 if paused else waiting, active=int(counts.get("active", 0)),
                          completed=int(counts.get("completed", 0)), failed=int(counts.get("failed", 0)),
                          delayed=int(counts.get("delayed", 0)), paused=waiting if paused else 0)

    async def jobs(self, state: JobState, limit: int, offset: int = 0) -> list[Job]:
        order = "DESC" if state in (JobState.COMPLETED, JobState.FAILED) else "ASC"
        with self._errors("jobs"):
            return self._select(self._db, f"state = ? ORDER BY score {order}, rowid {order} LIMIT ? OFFSET ?",
                                (state.value, limit, offset))

    async def close(self) -> None:
        self._db.close()


if TYPE_CHECKING:  # mypy proves the store implements the interface
    _implements: type[JobStore] = SqliteStore
