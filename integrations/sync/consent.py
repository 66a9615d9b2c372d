"""Consent (runbook 002 §3.2): `ConsentStore` keeps one consent per patient token, organisation and
purpose (state ACTIVE or REVOKED, the data classes granted); `ConsentGate` answers whether an operation
may go ahead, counts every answer (granted / denied / missing, per organisation) and emits
`ConsentChecked` for each.

The gate reads the store on every check, never a cache: a revocation blocks the next check at once,
queued sync jobs included (the sync worker checks again when a job runs).

```python
consents = ConsentStore(db)
consents.grant("pt_abc123", "org_1", [DataClass.CLINICAL_NOTES, DataClass.LAB_RESULTS])
gate = ConsentGate(consents, clock, listener)
gate.check("pt_abc123", "org_1", DataClass.LAB_RESULTS)   # ConsentDecision(allowed=True, status="granted", ...)
consents.revoke("pt_abc123", "org_1")
gate.check("pt_abc123", "org_1", DataClass.LAB_RESULTS)   # allowed=False, status="denied", "consent revoked"
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from integrations.clock import Clock
from integrations.events import ConsentChecked, EventListener, ignore_event
from integrations.sync.database import AppDatabase, from_ms
from integrations.sync.errors import ConsentDenied
from integrations.sync.models import (
    Consent,
    ConsentCounts,
    ConsentDecision,
    ConsentState,
    ConsentStatus,
    ConsentTally,
    DataClass,
    Purpose,
    check_token,
)


class ConsentStore:
    def __init__(self, db: AppDatabase) -> None:
        self._db = db

    def grant(self, patient_token: str, org_id: str, data_classes: Iterable[DataClass],
              purpose: Purpose = Purpose.CARE) -> Consent:
        """Make the consent ACTIVE with exactly these data classes (a new grant replaces an old one)."""
        check_token(patient_token)
        classes = sorted({DataClass(c) for c in data_classes})
        if not classes:
            raise ValueError("a consent needs at least one data class")
        self._db.connection.execute(
            "INSERT INTO consents (patient_token, org_id, purpose, state, data_classes, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (patient_token, org_id, purpose) DO UPDATE SET "
            "state = excluded.state, data_classes = excluded.data_classes, updated_ms = excluded.updated_ms",
            (patient_token, org_id, purpose.value, ConsentState.ACTIVE.value, json.dumps(classes), self._db.now_ms()))
        consent = self.get(patient_token, org_id, purpose)
        assert consent is not None
        return consent

    def revoke(self, patient_token: str, org_id: str, purpose: Purpose = Purpose.CARE) -> Consent | None:
        """Revoke the consent (None if there was none). Takes effect at the next check."""
        self._db.connection.execute(
            "UPDATE consents SET state = ?, updated_ms = ? WHERE patient_token = ? AND org_id = ? AND purpose = ?",
            (ConsentState.REVOKED.value, self._db.now_ms(), patient_token, org_id, purpose.value))
        return self.get(patient_token, org_id, purpose)

    def get(self, patient_token: str, org_id: str, purpose: Purpose = Purpose.CARE) -> Consent | None:
        row = self._db.connection.execute(
            "SELECT state, data_classes, updated_ms FROM consents WHERE patient_token = ? AND org_id = ? "
            "AND purpose = ?", (patient_token, org_id, purpose.value)).fetchone()
        if row is None:
            return None
        state, classes, updated = row
        return Consent(patient_token=patient_token, org_id=org_id, purpose=purpose, state=ConsentState(state),
                       data_classes=frozenset(DataClass(c) for c in json.loads(classes)), updated_at=from_ms(updated))


class ConsentGate:
    """Checks consent for an operation and counts every answer."""

    def __init__(self, store: ConsentStore, clock: Clock, listener: EventListener = ignore_event) -> None:
        self.store = store
        self._clock = clock
        self._listener = listener
        self._by_org: dict[str, ConsentTally] = {}

    def check(self, patient_token: str, org_id: str, data_class: DataClass,
              purpose: Purpose = Purpose.CARE, *, correlation_id: str | None = None) -> ConsentDecision:
        """One data class (a sync: CLINICAL_NOTES for encounters, LAB_RESULTS for observations)."""
        return self.check_all(patient_token, org_id, (data_class,), purpose, correlation_id=correlation_id)

    def check_all(self, patient_token: str, org_id: str, data_classes: Sequence[DataClass],
                  purpose: Purpose = Purpose.CARE, *, correlation_id: str | None = None) -> ConsentDecision:
        """Every one of `data_classes` (an export needs three), counted as one check."""
        if not data_classes:
            raise ValueError("a consent check needs at least one data class")
        decision = self._decide(self.store.get(patient_token, org_id, purpose), data_classes)
        self._by_org[org_id] = self._by_org.get(org_id, ConsentTally()).add(decision.status)
        self._listener(ConsentChecked(org_id=org_id, status=decision.status,
                                      data_class=",".join(c.value for c in data_classes), purpose=purpose.value,
                                      patient_token=patient_token, correlation_id=correlation_id))
        return decision

    def require(self, patient_token: str, org_id: str, data_classes: Sequence[DataClass],
                purpose: Purpose = Purpose.CARE) -> ConsentDecision:
        """`check_all`, raising `ConsentDenied` unless granted."""
        decision = self.check_all(patient_token, org_id, data_classes, purpose)
        if not decision.allowed:
            raise ConsentDenied(decision.reason, "missing" if decision.status == "missing" else "denied")
        return decision

    @staticmethod
    def _decide(consent: Consent | None, data_classes: Sequence[DataClass]) -> ConsentDecision:
        if consent is None:
            return ConsentDecision(allowed=False, status="missing", reason="no consent")
        if consent.state is not ConsentState.ACTIVE:
            return ConsentDecision(allowed=False, status="denied", reason="consent revoked")
        lacking = [c.value for c in data_classes if c not in consent.data_classes]
        if lacking:
            return ConsentDecision(allowed=False, status="denied",
                                   reason=f"data class {','.join(lacking)} not consented")
        return ConsentDecision(allowed=True, status="granted", reason="granted")

    def counts(self) -> ConsentCounts:
        tallies = dict(sorted(self._by_org.items()))
        status_total: dict[ConsentStatus, int] = {
            "granted": sum(t.granted for t in tallies.values()),
            "denied": sum(t.denied for t in tallies.values()),
            "missing": sum(t.missing for t in tallies.values()),
        }
        return ConsentCounts(granted=status_total["granted"], denied=status_total["denied"],
                             missing=status_total["missing"], by_org=tallies)
