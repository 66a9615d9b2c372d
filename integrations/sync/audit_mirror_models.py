"""The audit mirror's typed model (runbook 002_437ee203264dfa64.txt §2.6, §6.3): the error, the event types the
FHIR actions map to, a mirrored AuditEvent, one run's result, a row of the run history and the stats, each with
`.to_json()` in the runbook's camelCase shape.

A mirrored event keeps references and codes only: `agent.who`, `entity.what`, coded types, roles and
lifecycles, the action, the outcome. Names (`agent.name`, `entity.name`), descriptions, `entity.query` (a
search query can carry a patient's name), `entity.detail`, network addresses and free text are not
kept (see `integrations.sync.audit_mirror_parse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from integrations.sync.errors import SyncError
from integrations.sync.models import iso


class AuditMirrorError(SyncError):
    """The audit mirror's failures; `detail` names the problem (a field path, a class name), never a value."""


class MalformedAuditEvent(AuditMirrorError):
    """One AuditEvent could not be mirrored (counted in a run's `errors`, never raised out of `run`)."""


class MirrorEventType(StrEnum):
    """The local event type of a mirrored AuditEvent, by its FHIR action (runbook 002 §2.6)."""

    FHIR_CREATE = "FHIR_CREATE"
    FHIR_READ = "FHIR_READ"
    FHIR_UPDATE = "FHIR_UPDATE"
    FHIR_DELETE = "FHIR_DELETE"
    FHIR_EXECUTE = "FHIR_EXECUTE"


#: AuditEvent.action (http://hl7.org/fhir/audit-event-action) -> event type.
ACTION_EVENT_TYPES: dict[str, MirrorEventType] = {
    "C": MirrorEventType.FHIR_CREATE,
    "R": MirrorEventType.FHIR_READ,
    "U": MirrorEventType.FHIR_UPDATE,
    "D": MirrorEventType.FHIR_DELETE,
    "E": MirrorEventType.FHIR_EXECUTE,
}

RunStatus = Literal["running", "success", "failed"]


@dataclass(frozen=True, slots=True)
class AuditAgent:
    who: str | None  # a reference (`ClientApplication/...`, `Practitioner/...`); never a name
    type: str | None  # agent.type's first code (`humanuser`, ...)
    requestor: bool | None

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "who": self.who, "requestor": self.requestor}


@dataclass(frozen=True, slots=True)
class AuditEntity:
    what: str | None  # a reference (`Patient/pt-abc`, `Observation/...`)
    type: str | None
    role: str | None
    lifecycle: str | None

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "type": self.type, "role": self.role, "lifecycle": self.lifecycle}


@dataclass(frozen=True, slots=True)
class MirroredAuditEvent:
    """One of Medplum's AuditEvents as mirrored locally. `ts` is its `recorded` time."""

    id: int
    fhir_id: str
    ts: datetime
    last_updated: datetime
    mirrored_at: datetime
    event_type: MirrorEventType
    org_id: str | None
    action: str
    outcome: str | None  # 0, 4, 8, 12
    outcome_desc: str | None  # kept only when it is an HTTP status code
    subtype: tuple[str, ...]  # the FHIR interaction codes (`read`, `create`, ...)
    source: str  # the vendor the mirror read it from (`medplum`), runbook §2.6 `payload.source`
    observer: str | None  # AuditEvent.source.observer: its reference, else its display
    agents: tuple[AuditAgent, ...]
    entities: tuple[AuditEntity, ...]

    @property
    def agent(self) -> AuditAgent | None:
        """The requesting agent (the first with `requestor` true), else the first."""
        return next((a for a in self.agents if a.requestor), self.agents[0] if self.agents else None)

    def to_json(self) -> dict[str, object]:
        agent = self.agent
        return {"id": self.id, "fhirAuditEventId": self.fhir_id, "ts": iso(self.ts),
                "eventType": self.event_type.value, "orgId": self.org_id, "action": self.action,
                "outcome": self.outcome, "outcomeDesc": self.outcome_desc, "subtype": list(self.subtype),
                "source": self.source, "observer": self.observer,
                "agent": agent.to_json() if agent is not None else None,
                "agents": [a.to_json() for a in self.agents], "entities": [e.to_json() for e in self.entities],
                "lastUpdated": iso(self.last_updated), "mirroredAt": iso(self.mirrored_at)}


@dataclass(frozen=True, slots=True)
class MirrorResult:
    """One run (runbook 002 §2.6 "Mirror Result"). `last_synced_at`: the `meta.lastUpdated` of the most recent
    AuditEvent mirrored so far (the next run's starting point; None before any). `failure`: the error class
    name when the run stopped early (connector failure), else None; `to_json()` adds it only then."""

    start_time: datetime
    end_time: datetime
    duration_ms: int
    fetched: int  # AuditEvents read from Medplum that were new to the window
    mirrored: int  # stored
    skipped: int  # already mirrored (de-duplicated by FHIR id)
    errors: int  # malformed AuditEvents, plus 1 for a connector failure that stopped the run
    last_synced_at: datetime | None
    run_id: int = 0
    failure: str | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "startTime": iso(self.start_time), "endTime": iso(self.end_time), "durationMs": self.duration_ms,
            "fetched": self.fetched, "mirrored": self.mirrored, "skipped": self.skipped, "errors": self.errors,
            "lastSyncedAt": iso(self.last_synced_at)}
        if self.failure is not None:
            body["failure"] = self.failure
        return body


@dataclass(frozen=True, slots=True)
class MirrorRun:
    """A row of `audit_mirror_runs`: a past (or running) run."""

    id: int
    timestamp: datetime  # the run's start
    end_time: datetime | None
    duration_ms: int | None
    fetched: int
    mirrored: int
    skipped: int
    errors: int
    last_synced_at: datetime | None
    status: RunStatus
    failure: str | None
    force_since: datetime | None
    limit: int

    def to_json(self) -> dict[str, object]:
        return {"timestamp": iso(self.timestamp), "mirrored": self.mirrored, "skipped": self.skipped,
                "errors": self.errors, "fetched": self.fetched, "status": self.status, "failure": self.failure,
                "durationMs": self.duration_ms, "lastSyncedAt": iso(self.last_synced_at)}


@dataclass(frozen=True, slots=True)
class MirrorStats:
    """`GET /fhir/admin/audit-mirror/stats` (runbook 002 §6.3)."""

    last_run: datetime | None
    last_synced_at: datetime | None
    total_mirrored: int
    recent_runs: tuple[MirrorRun, ...]

    def to_json(self) -> dict[str, object]:
        return {"lastRun": iso(self.last_run), "lastSyncedAt": iso(self.last_synced_at),
                "totalMirrored": self.total_mirrored, "recentRuns": [r.to_json() for r in self.recent_runs]}


__all__ = ["ACTION_EVENT_TYPES", "AuditAgent", "AuditEntity", "AuditMirrorError", "MalformedAuditEvent",
           "MirrorEventType", "MirrorResult", "MirrorRun", "MirrorStats", "MirroredAuditEvent", "RunStatus"]
