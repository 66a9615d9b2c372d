"""Multi-system patient sync: fetch one patient from several systems and report where they disagree
(runbook `004_bc3882054056792c.txt`, "Multi-System Synchronization": `successful_systems`,
`failed_systems`, `conflicts_detected`).

```python
sync = PatientSync(registry, clock=clock, rng=rng, listener=listener)
report = await sync.sync_patient(Identifier("urn:oid:1.2.3", "EMPI-1"), ["epic_prod", "cerner_prod"])
report.successful_systems, report.failed_systems, report.conflicts
```

- Every system is asked at once (one task each, in a `TaskGroup`), for the Patients carrying the
  identifier (`identity.find_patients`). A system whose breaker refuses calls is not asked.
- A system that fails is *reported*, never raised: `failed` with the connector error's class name and
  status (a breaker that refused: `CircuitOpen`), `not_found` when it holds no such patient,
  `ambiguous` when it holds several (never guess which one is the person). Only bugs propagate.
- The records fetched are compared field by field (`conflicts.compare`, rules `PATIENT_FIELDS`);
  a sync with fewer than two records compares nothing and reports no conflicts.
- Events, in this order: `PatientSyncStarted`; `PatientSyncSystemFailed` per system without a record
  (in the order the systems were given); `PatientConflictsFound` (count and field paths) when there
  are conflicts; `PatientSyncCompleted` (counts, duration on the injected clock). They carry a
  `sync_id` (drawn from the injected rng), system ids, error class names and counts; never the
  identifier, a server id or a value. The report returned to the caller holds the records and values.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from integrations.clock import Clock
from integrations.events import (
    EventListener,
    PatientConflictsFound,
    PatientSyncCompleted,
    PatientSyncStarted,
    PatientSyncSystemFailed,
    ignore_event,
)
from integrations.fhir import CircuitOpen, ConnectorError, FhirResource
from integrations.systems.config import Vendor
from integrations.systems.conflicts import PATIENT_FIELDS, FieldConflict, FieldRule, compare
from integrations.systems.identity import Identifier, find_patients
from integrations.systems.registry import RegisteredSystem, SystemRegistry, refuses_calls

logger = logging.getLogger(__name__)

SystemState = Literal["fetched", "not_found", "ambiguous", "failed"]


@dataclass(frozen=True, slots=True)
class SystemResult:
    """What one system gave the sync."""

    system_id: str
    vendor: Vendor
    state: SystemState
    patient: FhirResource | None = None  # when fetched
    error: str | None = None  # the connector error's class name, when failed
    status: int | None = None  # its HTTP status, when there was one
    matches: int = 0  # Patients carrying the identifier

    @property
    def ok(self) -> bool:
        return self.state == "fetched"

    @property
    def reason(self) -> str:
        """Why there is no record: the error class name, `not_found` or `ambiguous` (empty when fetched)."""
        return self.error or ("" if self.ok else self.state)


@dataclass(frozen=True, slots=True)
class PatientSyncReport:
    sync_id: str
    systems: tuple[SystemResult, ...]  # in the order the systems were given
    conflicts: tuple[FieldConflict, ...]  # in `PATIENT_FIELDS` order
    duration_s: float

    def __repr__(self) -> str:
        return (f"PatientSyncReport(sync_id={self.sync_id!r}, successful={list(self.successful_systems)!r}, "
                f"failed={list(self.failed_systems)!r}, conflicts={[c.field for c in self.conflicts]!r})")

    @property
    def successful_systems(self) -> tuple[str, ...]:
        return tuple(r.system_id for r in self.systems if r.ok)

    @property
    def failed_systems(self) -> tuple[str, ...]:
        """Systems without a record to compare: failed, not found or ambiguous."""
        return tuple(r.system_id for r in self.systems if not r.ok)

    @property
    def compared(self) -> int:
        return len(self.successful_systems)

    def result(self, system_id: str) -> SystemResult:
        for result in self.systems:
            if result.system_id == system_id:
                return result
        raise KeyError(system_id)

    def conflict(self, field: str) -> FieldConflict | None:
        return next((c for c in self.conflicts if c.field == field), None)


class PatientSync:
    """Fetch a patient from several systems and compare; see the module docstring."""

    def __init__(self, registry: SystemRegistry, *, clock: Clock, rng: random.Random,
                 listener: EventListener = ignore_event, rules: Sequence[FieldRule] = PATIENT_FIELDS) -> None:
        self._registry = registry
        self._clock = clock
        self._rng = rng
        self._listener = listener
        self._rules = tuple(rules)

    async def sync_patient(self, identifier: Identifier, systems: Sequence[str] | None = None) -> PatientSyncReport:
        """Sync the patient carrying `identifier` across `systems` (default: every configured system)."""
        chosen = [self._registry.get(s) for s in systems] if systems is not None else list(self._registry)
        ids = [s.id for s in chosen]
        if not chosen:
            raise ValueError("a sync needs at least one system")
        if len(set(ids)) != len(ids):
            raise ValueError("a system is named twice")
        sync_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        salt = self._rng.getrandbits(128).to_bytes(16, "big")
        started = self._clock.monotonic()
        self._listener(PatientSyncStarted(sync_id=sync_id, systems=tuple(ids)))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._fetch(system, identifier)) for system in chosen]
        results = tuple(task.result() for task in tasks)
        for result in results:
            if not result.ok:
                logger.info("patient sync %s: %s gave no record (%s)", sync_id, result.system_id, result.reason)
                self._listener(PatientSyncSystemFailed(sync_id=sync_id, system=result.system_id, reason=result.reason))
        records = [(r.system_id, r.patient.body) for r in results if r.patient is not None]
        conflicts = compare(records, salt=salt, rules=self._rules)
        if conflicts:
            logger.info("patient sync %s: %d conflicting field(s): %s", sync_id, len(conflicts),
                        "; ".join(c.redacted() for c in conflicts))
            self._listener(PatientConflictsFound(sync_id=sync_id, conflicts=len(conflicts),
                                                 fields=tuple(c.field for c in conflicts)))
        duration = self._clock.monotonic() - started
        self._listener(PatientSyncCompleted(sync_id=sync_id, fetched=len(records), failed=len(results) - len(records),
                                            conflicts=len(conflicts), duration_s=duration))
        return PatientSyncReport(sync_id=sync_id, systems=results, conflicts=conflicts, duration_s=duration)

    async def _fetch(self, system: RegisteredSystem, identifier: Identifier) -> SystemResult:
        if refuses_calls(system.breaker.state):
            return SystemResult(system_id=system.id, vendor=system.vendor, state="failed", error=CircuitOpen.__name__)
        try:
            matches = await find_patients(system.client, identifier)
        except ConnectorError as error:
            return SystemResult(system_id=system.id, vendor=system.vendor, state="failed", error=type(error).__name__,
                                status=error.status)
        if len(matches) == 1:
            return SystemResult(system_id=system.id, vendor=system.vendor, state="fetched", patient=matches[0],
                                matches=1)
        return SystemResult(system_id=system.id, vendor=system.vendor,
                            state="not_found" if not matches else "ambiguous", matches=len(matches))
