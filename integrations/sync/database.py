"""`AppDatabase`: the application's own SQLite file (runbook 002 Appendix B's tables, in SQLite): patient
tokens, consents, encounters, observations, audit events and reconciliation runs.

- WAL journal (readers never block the writer), `synchronous=NORMAL`, a busy timeout; autocommit mode
  with explicit `BEGIN IMMEDIATE` transactions (`transaction()`) for multi-statement writes.
- The stdlib `sqlite3`, called synchronously from the event loop (not aiosqlite), for the reason given in
  `integrations.queue.sqlite_store`: in virtual time the loop must not wait on threads, and these
  statements take microseconds.
- Times are integer milliseconds since the epoch on the injected clock (`now_ms()`).

Other modules (the audit mirror) create their own tables on `connection` with `CREATE TABLE IF NOT EXISTS`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from integrations.clock import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS patient_tokens (
    token TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    encrypted_payload_uri TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    fhir_synced_ms INTEGER
);
CREATE TABLE IF NOT EXISTS consents (
    patient_token TEXT NOT NULL,
    org_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    data_classes TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (patient_token, org_id, purpose)
);
CREATE TABLE IF NOT EXISTS encounters (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL,
    patient_token TEXT NOT NULL,
    details TEXT NOT NULL,
    fhir_sync_enabled INTEGER NOT NULL,
    source TEXT NOT NULL,
    external_id TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_synced_ms INTEGER,
    fhir_resource_id TEXT UNIQUE,
    fhir_version TEXT
);
CREATE INDEX IF NOT EXISTS encounters_fhir_sync ON encounters (org_id, fhir_sync_enabled, last_synced_ms);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters (patient_token, org_id);
CREATE TABLE IF NOT EXISTS observations (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL,
    patient_token TEXT NOT NULL,
    details TEXT NOT NULL,
    fhir_sync_enabled INTEGER NOT NULL,
    source TEXT NOT NULL,
    external_id TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_synced_ms INTEGER,
    fhir_resource_id TEXT UNIQUE,
    fhir_version TEXT
);
CREATE INDEX IF NOT EXISTS observations_fhir_sync ON observations (org_id, fhir_sync_enabled, last_synced_ms);
CREATE INDEX IF NOT EXISTS observations_patient ON observations (patient_token, org_id);
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    org_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    user_id TEXT,
    user_role TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    resource_count INTEGER
);
CREATE INDEX IF NOT EXISTS audit_events_by_type ON audit_events (event_type, ts_ms);
CREATE INDEX IF NOT EXISTS audit_events_by_org ON audit_events (org_id, ts_ms);
CREATE TABLE IF NOT EXISTS reconciliation_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL,
    stale_window_s REAL NOT NULL,
    batch_size INTEGER NOT NULL,
    result TEXT NOT NULL
);
"""


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def opt_from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


class AppDatabase:
    """One SQLite file (`":memory:"` for a throwaway one) with the sync pipeline's schema."""

    def __init__(self, path: str | Path, clock: Clock, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.clock = clock
        # check_same_thread=False: a web server may call from its threadpool; every call is one short
        # statement or one `transaction()`, and sqlite3 serialises access to the connection.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"AppDatabase(path={self.path!r})"

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... `COMMIT` (rolled back on an exception)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
