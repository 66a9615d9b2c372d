"""`AuditMirror`: Medplum's AuditEvents mirrored into the application database (runbook
002_437ee203264dfa64.txt §2.6, §6.3 `/fhir/admin/audit-mirror/{stats,run,cron,search}`).

```python
mirror = AuditMirror(db, medplum.connector, clock, listener)
result = await mirror.run(limit=1000)               # incremental; force_since=datetime(...) re-reads from then
result.to_json()                                    # {startTime, endTime, durationMs, fetched, mirrored, ...}
mirror.stats().to_json()                            # {lastRun, lastSyncedAt, totalMirrored, recentRuns}
mirror.search(org_id="org_1", event_types=["FHIR_UPDATE"], entity_reference="Patient/pt-abc")
```

Incremental: a run searches `AuditEvent?_lastUpdated=ge<last_synced_at>&_sort=_lastUpdated&_count=<page>`
and follows the searchset's `next` links page by page (each page one `FhirConnector.search` with the link's
query, so a page is retried alone and never leaves the FHIR base). The window starts *at* the last run's
`last_synced_at` (`ge`, not `gt`): events written in that same millisecond after the last run are not lost.
The events at that instant the previous run already handled (their FHIR ids are kept with the cursor, the
run row's `boundary`) are dropped before counting, so `fetched` counts only events new to the window.
`force_since` starts the window there instead and drops nothing: whatever was mirrored before counts in
`skipped`. De-duplication is the unique index on the FHIR id (`INSERT ... ON CONFLICT DO NOTHING`), so an
overlapping window or a concurrent run can never store an event twice.

`limit`: at most that many events are counted (`fetched`) per run; the rest wait for the next one. The
cursor (`last_synced_at`, the newest `meta.lastUpdated` handled) only moves forward, and is committed with
each page's events in one transaction, so a crash or a connector failure keeps every page finished before
it and the next run resumes from there. A connector failure (after the connector's own retries) ends the
run as `failed`, counted as one error with the error's class name in `failure`; a malformed AuditEvent
(`integrations.sync.audit_mirror_parse`) is an error counted in `errors`, never an exception.

Tables (created here): `mirrored_audit_events` (one row per FHIR id; references and codes only, see the
parse module; `payload` is the JSON of agents, entities, subtype, observer and source), `audit_mirror_runs`
(the history, and the cursor). Every run emits `AuditMirrorCompleted` (counts only) and, with an
`AuditTrail`, a `FHIR_AUDIT_MIRROR` audit event. Runs of one `AuditMirror` are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from integrations.clock import Clock
from integrations.events import AuditMirrorCompleted, EventListener, ignore_event
from integrations.fhir import BundlePage, ConnectorError, FhirConnector
from integrations.sync.audit import AuditTrail
from integrations.sync.audit_mirror_models import (
    AuditAgent,
    AuditEntity,
    AuditMirrorError,
    MalformedAuditEvent,
    MirroredAuditEvent,
    MirrorEventType,
    MirrorResult,
    MirrorRun,
    MirrorStats,
    RunStatus,
)
from integrations.sync.audit_mirror_parse import ParsedAuditEvent, last_updated, parse_audit_event
from integrations.sync.database import AppDatabase, from_ms, opt_from_ms, to_ms
from integrations.sync.models import AuditEventType, iso
from integrations.sync.reconciliation import ALL_ORGS

__all__ = ["AuditAgent", "AuditEntity", "AuditMirror", "AuditMirrorError", "MalformedAuditEvent",
           "MirrorEventType", "MirrorResult", "MirrorRun", "MirrorStats", "MirroredAuditEvent"]

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS mirrored_audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fhir_id TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL,
    last_updated_ms INTEGER NOT NULL,
    mirrored_ms INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    org_id TEXT,
    action TEXT NOT NULL,
    outcome TEXT,
    payload TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS mirrored_audit_events_fhir_id ON mirrored_audit_events (fhir_id);
CREATE INDEX IF NOT EXISTS mirrored_audit_events_ts ON mirrored_audit_events (recorded_ms);
CREATE INDEX IF NOT EXISTS mirrored_audit_events_org ON mirrored_audit_events (org_id, recorded_ms);
CREATE INDEX IF NOT EXISTS mirrored_audit_events_type ON mirrored_audit_events (event_type, recorded_ms);
CREATE TABLE IF NOT EXISTS audit_mirror_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    duration_ms INTEGER,
    run_limit INTEGER NOT NULL,
    force_since_ms INTEGER,
    fetched INTEGER NOT NULL DEFAULT 0,
    mirrored INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    last_synced_ms INTEGER,
    boundary TEXT NOT NULL,
    status TEXT NOT NULL,
    failure TEXT
);
"""

_EVENT_COLUMNS = ("id, fhir_id, recorded_ms, last_updated_ms, mirrored_ms, event_type, org_id, action, outcome, "
                  "payload")
_RUN_COLUMNS = ("id, started_ms, ended_ms, duration_ms, fetched, mirrored, skipped, errors, last_synced_ms, status, "
                "failure, force_since_ms, run_limit")
_EventRow = tuple[int, str, int, int, int, str, str | None, str, str | None, str]
_RunRow = tuple[int, int, int | None, int | None, int, int, int, int, int | None, str, str | None, int | None, int]


@dataclass(slots=True)
class _Progress:
    """A run's counts and its cursor: the newest `meta.lastUpdated` handled (ms) and the ids handled at it."""

    cursor_ms: int | None
    boundary: set[str]
    fetched: int = 0
    mirrored: int = 0
    skipped: int = 0
    errors: int = 0
    rows: list[tuple[object, ...]] = field(default_factory=list)

    def reach(self, ms: int, fhir_id: str) -> None:
        if self.cursor_ms is None or ms > self.cursor_ms:
            self.cursor_ms, self.boundary = ms, {fhir_id}
        elif ms == self.cursor_ms:
            self.boundary.add(fhir_id)


class AuditMirror:
    def __init__(self, db: AppDatabase, connector: FhirConnector, clock: Clock,
                 listener: EventListener = ignore_event, *, audit: AuditTrail | None = None,
                 page_size: int = 200) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be in 1..1000 (Medplum's largest _count)")
        self._db = db
        self._connector = connector
        self._clock = clock
        self._listener = listener
        self._audit = audit
        self._page_size = page_size
        self._lock = asyncio.Lock()
        db.connection.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"AuditMirror(vendor={self._connector.vendor!r}, db={self._db!r})"

    # -- runs ----------------------------------------------------------------------------------------

    async def run(self, limit: int = 1000, force_since: datetime | None = None) -> MirrorResult:
        """Mirror the AuditEvents written since the last run (or since `force_since`); see the module docstring."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if force_since is not None and force_since.tzinfo is None:
            raise ValueError("force_since must be timezone-aware")
        async with self._lock:
            return await self._run(limit, force_since)

    async def _run(self, limit: int, force_since: datetime | None) -> MirrorResult:
        start = self._clock.now()
        started = self._clock.monotonic()
        cursor_ms, boundary = self._cursor()
        since_ms = to_ms(force_since) if force_since is not None else cursor_ms
        overlap = frozenset(boundary) if force_since is None else frozenset()
        progress = _Progress(cursor_ms, set(boundary))
        run_id = self._start_row(start, limit, force_since, progress)
        failure: str | None = None
        try:
            await self._read(run_id, since_ms, overlap, limit, progress)
        except (ConnectorError, AuditMirrorError) as exc:
            failure = type(exc).__name__
            progress.errors += 1
            logger.warning("audit mirror run %d stopped by %s after %d AuditEvents", run_id, failure,
                           progress.fetched)
        end = self._clock.now()
        duration_ms = round((self._clock.monotonic() - started) * 1000)
        status: RunStatus = "failed" if failure is not None else "success"
        self._db.connection.execute(
            "UPDATE audit_mirror_runs SET ended_ms = ?, duration_ms = ?, errors = ?, status = ?, failure = ? "
            "WHERE id = ?", (to_ms(end), duration_ms, progress.errors, status, failure, run_id))
        result = MirrorResult(start_time=start, end_time=end, duration_ms=duration_ms, fetched=progress.fetched,
                              mirrored=progress.mirrored, skipped=progress.skipped, errors=progress.errors,
                              last_synced_at=opt_from_ms(progress.cursor_ms), run_id=run_id, failure=failure)
        logger.info("audit mirror run %d %s: fetched %d, mirrored %d, skipped %d, errors %d", run_id, status,
                    result.fetched, result.mirrored, result.skipped, result.errors)
        if self._audit is not None:
            self._audit.record(AuditEventType.FHIR_AUDIT_MIRROR, ALL_ORGS, f"audit-mirror-{run_id}",
                               outcome="failure" if result.errors else "success",
                               detail=f"fetched {result.fetched}, mirrored {result.mirrored}, skipped "
                                      f"{result.skipped}, errors {result.errors}" + (f", {failure}" if failure else ""),
                               resource_count=result.mirrored)
        self._listener(AuditMirrorCompleted(fetched=result.fetched, mirrored=result.mirrored,
                                            skipped=result.skipped, errors=result.errors))
        return result

    async def _read(self, run_id: int, since_ms: int | None, overlap: frozenset[str], limit: int,
                    progress: _Progress) -> None:
        wanted = limit + len(overlap)
        count = min(self._page_size, wanted)
        query: dict[str, str | list[str]] = {"_sort": "_lastUpdated", "_count": str(count)}
        if since_ms is not None:
            query["_lastUpdated"] = f"ge{iso(from_ms(since_ms))}"
        followed: set[str] = set()
        for _ in range(wanted // count + 2):  # a guard against a server whose next links never end
            page = await self._connector.search("AuditEvent", query)
            for resource in page.resources:
                if progress.fetched >= limit:
                    break
                updated = last_updated(resource)
                updated_ms = None if updated is None else to_ms(updated)
                if updated_ms is not None and updated_ms == since_ms and resource.id in overlap:
                    continue  # handled by the previous run: the window overlaps it by one instant
                progress.fetched += 1
                try:
                    self._stage(parse_audit_event(resource), run_id, progress)
                except MalformedAuditEvent as exc:
                    progress.errors += 1
                    logger.warning("audit mirror run %d: AuditEvent/%s not mirrored: %s", run_id, resource.id,
                                   exc.detail)
                if updated_ms is not None:
                    progress.reach(updated_ms, resource.id)
            self._commit(run_id, progress)
            if progress.fetched >= limit or not page.resources or page.next_url is None:
                return
            query = _next_query(page, followed)

    def _stage(self, event: ParsedAuditEvent, run_id: int, progress: _Progress) -> None:
        payload = {"source": self._connector.vendor, "subtype": list(event.subtype), "outcomeDesc": event.outcome_desc,
                   "observer": event.observer, "agents": [a.to_json() for a in event.agents],
                   "entities": [e.to_json() for e in event.entities]}
        progress.rows.append((event.fhir_id, to_ms(event.recorded), to_ms(event.last_updated), self._db.now_ms(),
                              run_id, event.event_type.value, event.org_id, event.action, event.outcome,
                              json.dumps(payload, separators=(",", ":"))))

    def _commit(self, run_id: int, progress: _Progress) -> None:
        """A page's events and the run's counts and cursor, in one transaction."""
        with self._db.transaction() as conn:
            for row in progress.rows:
                inserted = conn.execute(
                    "INSERT INTO mirrored_audit_events (fhir_id, recorded_ms, last_updated_ms, mirrored_ms, run_id, "
                    "event_type, org_id, action, outcome, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (fhir_id) DO NOTHING", row).rowcount
                if inserted:
                    progress.mirrored += 1
                else:
                    progress.skipped += 1
            conn.execute("UPDATE audit_mirror_runs SET fetched = ?, mirrored = ?, skipped = ?, errors = ?, "
                         "last_synced_ms = ?, boundary = ? WHERE id = ?",
                         (progress.fetched, progress.mirrored, progress.skipped, progress.errors, progress.cursor_ms,
                          json.dumps(sorted(progress.boundary)), run_id))
        progress.rows.clear()

    def _cursor(self) -> tuple[int | None, list[str]]:
        row = self._db.connection.execute(
            "SELECT last_synced_ms, boundary FROM audit_mirror_runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None, []
        ids = json.loads(row[1])
        return row[0], [str(i) for i in ids] if isinstance(ids, list) else []

    def _start_row(self, start: datetime, limit: int, force_since: datetime | None, progress: _Progress) -> int:
        cursor = self._db.connection.execute(
            "INSERT INTO audit_mirror_runs (started_ms, run_limit, force_since_ms, last_synced_ms, boundary, status) "
            "VALUES (?, ?, ?, ?, ?, 'running')",
            (to_ms(start), limit, None if force_since is None else to_ms(force_since), progress.cursor_ms,
             json.dumps(sorted(progress.boundary))))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # -- reading -------------------------------------------------------------------------------------

    def history(self, limit: int = 20) -> list[MirrorRun]:
        """Past runs, newest first."""
        rows: list[_RunRow] = self._db.connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM audit_mirror_runs ORDER BY id DESC LIMIT ?", (max(limit, 0),)).fetchall()
        return [_run(row) for row in rows]

    def stats(self, recent: int = 10) -> MirrorStats:
        """`GET /fhir/admin/audit-mirror/stats` (runbook 002 §6.3)."""
        runs = self.history(recent)
        (total,) = self._db.connection.execute("SELECT COUNT(*) FROM mirrored_audit_events").fetchone()
        return MirrorStats(last_run=runs[0].timestamp if runs else None,
                           last_synced_at=opt_from_ms(self._cursor()[0]), total_mirrored=int(total),
                           recent_runs=tuple(runs))

    def search(self, org_id: str | None = None, event_types: Sequence[str] | None = None,
               since: datetime | None = None, until: datetime | None = None, agent_reference: str | None = None,
               entity_reference: str | None = None, limit: int = 100) -> list[MirroredAuditEvent]:
        """Mirrored events, newest `recorded` first, at most `limit`. `since`/`until` bound `recorded`
        (inclusive); the references match any agent's `who` / any entity's `what`; an unknown event type
        matches nothing."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        clauses: list[str] = []
        args: list[object] = []
        if org_id is not None:
            clauses.append("org_id = ?")
            args.append(org_id)
        if event_types is not None:
            known = sorted({str(t) for t in event_types} & {t.value for t in MirrorEventType})
            if not known:
                return []
            clauses.append(f"event_type IN ({', '.join('?' for _ in known)})")
            args.extend(known)
        for op, moment in ((">=", since), ("<=", until)):
            if moment is not None:
                clauses.append(f"recorded_ms {op} ?")
                args.append(to_ms(moment))
        for path, key, ref in (("$.agents", "$.who", agent_reference), ("$.entities", "$.what", entity_reference)):
            if ref is not None:
                clauses.append(f"EXISTS (SELECT 1 FROM json_each(payload, '{path}') WHERE json_extract(value, "
                               f"'{key}') = ?)")
                args.append(ref)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows: list[_EventRow] = self._db.connection.execute(
            f"SELECT {_EVENT_COLUMNS} FROM mirrored_audit_events{where} ORDER BY recorded_ms DESC, id DESC LIMIT ?",
            (*args, limit)).fetchall()
        return [_event(row) for row in rows]

    def count(self) -> int:
        (total,) = self._db.connection.execute("SELECT COUNT(*) FROM mirrored_audit_events").fetchone()
        return int(total)


def _next_query(page: BundlePage, followed: set[str]) -> dict[str, str | list[str]]:
    """The query of a `next` link, sent to our own FHIR base (never to the link's host: no token leaves)."""
    assert page.next_url is not None
    try:
        url = httpx.URL(page.next_url)
    except httpx.InvalidURL:
        raise AuditMirrorError("the searchset's next link is not a valid URL") from None
    if not url.path.rstrip("/").endswith("/AuditEvent") or str(url.params) in followed:
        raise AuditMirrorError("the searchset's next link is not a new page of this AuditEvent search")
    followed.add(str(url.params))
    query: dict[str, str | list[str]] = {}
    for key, value in url.params.multi_items():
        present = query.get(key)
        query[key] = value if present is None else [*([present] if isinstance(present, str) else present), value]
    return query


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _event(row: _EventRow) -> MirroredAuditEvent:
    rid, fhir_id, recorded, updated, mirrored, event_type, org, action, outcome, text = row
    payload = json.loads(text)
    agents = tuple(AuditAgent(who=_opt_str(a, "who"), type=_opt_str(a, "type"),
                              requestor=r if isinstance(r := a.get("requestor"), bool) else None)
                   for a in payload.get("agents", []) if isinstance(a, dict))
    entities = tuple(AuditEntity(what=_opt_str(e, "what"), type=_opt_str(e, "type"), role=_opt_str(e, "role"),
                                 lifecycle=_opt_str(e, "lifecycle"))
                     for e in payload.get("entities", []) if isinstance(e, dict))
    return MirroredAuditEvent(
        id=rid, fhir_id=fhir_id, ts=from_ms(recorded), last_updated=from_ms(updated), mirrored_at=from_ms(mirrored),
        event_type=MirrorEventType(event_type), org_id=org, action=action, outcome=outcome,
        outcome_desc=_opt_str(payload, "outcomeDesc"),
        subtype=tuple(str(s) for s in payload.get("subtype", [])), source=str(payload.get("source", "")),
        observer=_opt_str(payload, "observer"), agents=agents, entities=entities)


def _run(row: _RunRow) -> MirrorRun:
    rid, started, ended, duration, fetched, mirrored, skipped, errors, synced, status, failure, since, limit = row
    return MirrorRun(id=rid, timestamp=from_ms(started), end_time=opt_from_ms(ended), duration_ms=duration,
                     fetched=fetched, mirrored=mirrored, skipped=skipped, errors=errors,
                     last_synced_at=opt_from_ms(synced),
                     status="failed" if status == "failed" else "success" if status == "success" else "running",
                     failure=failure, force_since=opt_from_ms(since), limit=limit)
