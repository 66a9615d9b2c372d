"""The sync pipeline's errors: one tree, raised by the consent gate, the application store, the sync
worker, ingress, export and reconciliation (`integrations.sync`).

```
SyncError                   root (an `integrations.errors.IntegrationError`); `.detail` is a short message
                            free of PHI (safe for an HTTP body)
├── ConsentDenied           no active CARE consent with the data class(es): `status` "denied" | "missing"
├── UnknownPatientToken     the patient token is not known (ingress, export, writes)
├── WrongOrganisation       the patient token (or record) belongs to another organisation
├── InvalidResource         an inbound FHIR resource is malformed, of the wrong type, or not valid R4
├── ExportForbidden         the requester's role may not export this patient (runbook 002 §6.2 RBAC)
└── RecordNotFound          no local record with this kind and id
```

The audit mirror (`integrations.sync.audit_mirror`) adds `AuditMirrorError(SyncError)`. Queue and
connector failures keep their own trees (`integrations.queue`, `integrations.fhir`): the sync worker lets
them through so the queue retries. Bad arguments (an ill-formed token, an empty data class list) raise
`ValueError`, as everywhere in `integrations`.

Messages carry kinds, record ids, pseudonymous patient tokens and organisation ids: never a name, a
date of birth, a contact detail or any free text from a record.
"""

from __future__ import annotations

from typing import Literal

from integrations.errors import IntegrationError


class SyncError(IntegrationError):
    """Root of the sync pipeline's failures."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class ConsentDenied(SyncError):
    """No active consent covers the operation: revoked, or without the data class (`denied`), or none at all
    (`missing`)."""

    def __init__(self, reason: str, status: Literal["denied", "missing"]) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"consent {status}: {reason}")


class UnknownPatientToken(SyncError):
    def __init__(self, patient_token: str) -> None:
        self.patient_token = patient_token
        super().__init__(f"unknown patient token {patient_token!r}")


class WrongOrganisation(SyncError):
    def __init__(self, subject: str, org_id: str) -> None:
        self.subject = subject
        self.org_id = org_id
        super().__init__(f"{subject} does not belong to organisation {org_id!r}")


class InvalidResource(SyncError):
    """`detail` names the problem (field paths, types), never field values."""


class ExportForbidden(SyncError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"export forbidden: {reason}")


class RecordNotFound(SyncError):
    def __init__(self, kind: str, record_id: str) -> None:
        self.kind = kind
        self.record_id = record_id
        super().__init__(f"no {kind} {record_id!r}")
