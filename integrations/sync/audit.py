"""`AuditTrail`: the sync pipeline's audit events (runbook 002 §3.3) in the application database's
`audit_events` table: FHIR_SYNC, FHIR_SYNC_FAILED (write failures), FHIR_INGRESS, FHIR_EXPORT,
FHIR_RECONCILIATION (and FHIR_AUDIT_MIRROR), each with a correlation id.

An audit event carries pseudonymous ids only: organisation, correlation id, resource type and id (a
record id or a patient token), user id and role, the outcome, a short PHI-free `detail` (an error class
name, a consent reason) and a resource count. Callers never put a record's content in it; `detail` is cut
to `DETAIL_LIMIT` characters. Retention is the deployment's policy (7 years typical, §3.3): nothing here
deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from integrations.clock import Clock
from integrations.events import AuditRecorded, EventListener, ignore_event
from integrations.sync.database import AppDatabase, from_ms, to_ms
from integrations.sync.models import AuditEventType, AuditRecord, ExportRecord, Outcome

DETAIL_LIMIT = 200

_COLUMNS = ("id, ts_ms, org_id, event_type, correlation_id, resource_type, resource_id, user_id, user_role, outcome, "
            "detail, resource_count")
_Row = tuple[int, int, str, str, str, str | None, str | None, str | None, str | None, str, str | None, int | None]


def _record(row: _Row) -> AuditRecord:
    (rid, ts, org, event_type, correlation, rtype, resource, user, role, outcome, detail, count) = row
    return AuditRecord(id=rid, ts=from_ms(ts), org_id=org, event_type=AuditEventType(event_type),
                       correlation_id=correlation, resource_type=rtype, resource_id=resource, user_id=user,
                       user_role=role, outcome="failure" if outcome == "failure" else
                       "denied" if outcome == "denied" else "success", detail=detail, resource_count=count)


class AuditTrail:
    def __init__(self, db: AppDatabase, clock: Clock, listener: EventListener = ignore_event) -> None:
        self._db = db
        self._clock = clock
        self._listener = listener

    def record(self, event_type: AuditEventType, org_id: str, correlation_id: str, resource_type: str | None = None,
               resource_id: str | None = None, user_id: str | None = None, user_role: str | None = None,
               outcome: Outcome = "success", detail: str | None = None, *,
               resource_count: int | None = None) -> AuditRecord:
        if outcome not in ("success", "failure", "denied"):
            raise ValueError("outcome must be success, failure or denied")
        ts = to_ms(self._clock.now())
        detail = None if detail is None else detail[:DETAIL_LIMIT]
        cursor = self._db.connection.execute(
            f"INSERT INTO audit_events ({_COLUMNS.removeprefix('id, ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ts, org_id, AuditEventType(event_type).value, correlation_id, resource_type, resource_id, user_id,
             user_role, outcome, detail, resource_count))
        assert cursor.lastrowid is not None
        self._listener(AuditRecorded(event_type=AuditEventType(event_type).value, org_id=org_id,
                                     correlation_id=correlation_id, resource_type=resource_type,
                                     resource_id=resource_id, outcome=outcome))
        return AuditRecord(id=cursor.lastrowid, ts=from_ms(ts), org_id=org_id, event_type=AuditEventType(event_type),
                           correlation_id=correlation_id, resource_type=resource_type, resource_id=resource_id,
                           user_id=user_id, user_role=user_role, outcome=outcome, detail=detail,
                           resource_count=resource_count)

    def _where(self, org_id: str | None, event_types: Sequence[AuditEventType] | None, since: datetime | None,
               until: datetime | None, correlation_id: str | None) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if org_id is not None:
            clauses.append("org_id = ?")
            args.append(org_id)
        if event_types is not None:
            types = [AuditEventType(t).value for t in event_types]
            if not types:
                return " WHERE 0", []
            clauses.append(f"event_type IN ({', '.join('?' for _ in types)})")
            args.extend(types)
        if since is not None:
            clauses.append("ts_ms >= ?")
            args.append(to_ms(since))
        if until is not None:
            clauses.append("ts_ms <= ?")
            args.append(to_ms(until))
        if correlation_id is not None:
            clauses.append("correlation_id = ?")
            args.append(correlation_id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def search(self, org_id: str | None = None, event_types: Sequence[AuditEventType] | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int = 100, *,
               correlation_id: str | None = None) -> list[AuditRecord]:
        """Newest first, at most `limit`."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        where, args = self._where(org_id, event_types, since, until, correlation_id)
        rows = self._db.connection.execute(
            f"SELECT {_COLUMNS} FROM audit_events{where} ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_record(row) for row in rows]

    def count(self, org_id: str | None = None, event_types: Sequence[AuditEventType] | None = None,
              since: datetime | None = None, until: datetime | None = None) -> int:
        where, args = self._where(org_id, event_types, since, until, None)
        (n,) = self._db.connection.execute(f"SELECT COUNT(*) FROM audit_events{where}", args).fetchone()
        return int(n)

    def counts_by_type(self) -> dict[str, int]:
        """Events per type (runbook 002 §8.3 `holi_hipaa_audit_events_total`)."""
        rows = self._db.connection.execute(
            "SELECT event_type, COUNT(*) FROM audit_events GROUP BY event_type ORDER BY event_type").fetchall()
        return {str(t): int(n) for t, n in rows}

    def recent_exports(self, limit: int = 10, org_id: str | None = None) -> list[ExportRecord]:
        """Successful exports, newest first (runbook 002 §6.2 `GET /fhir/export/exports`)."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        where, args = self._where(org_id, [AuditEventType.FHIR_EXPORT], None, None, None)
        rows = self._db.connection.execute(
            f"SELECT {_COLUMNS} FROM audit_events{where} AND outcome = 'success' ORDER BY id DESC LIMIT ?",
            (*args, limit)).fetchall()
        records = [_record(row) for row in rows]
        return [ExportRecord(timestamp=r.ts, correlation_id=r.correlation_id, user_id=r.user_id,
                             patient_token=r.resource_id, resource_count=r.resource_count or 0) for r in records]
