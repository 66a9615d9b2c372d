"""Privacy invariants of the sync pipeline (runbook 002 §3): consent never bypassed (§3.2), no PHI sent
to Medplum (§3.1), every write audited (§3.3, and 000 §4's audit of failed EHR writes).

`consent_never_bypassed`: the journal's `consent.checked` names no patient or record (see the report
of issue 7 for the fields the runner should add), so the check is per record: once a record's sync was
refused for consent (`fhir_sync.failed` / `fhir_sync.enqueue_failed` with error `ConsentDenied`), a later
`fhir_sync.completed` of that record needs a granted `consent.checked` for its data class (CLINICAL_NOTES
for encounters, LAB_RESULTS for observations) in between: consent given again. Otherwise the revoked
consent was bypassed (002 §3.2: "Consent Revocation: Immediately blocks all FHIR sync/export").

Matched: `consent_never_bypassed` the consent checks and record syncs read, `no_phi_to_medplum` the
resources scanned, `every_write_audited` the sync writes. Each with nothing of those in the journal
matched nothing.
"""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.invariant_models import Invariant
from harness.checks.verdict import Verdict
from harness.journal import AuditRecordedEvent, ConsentCheckedEvent, FhirSyncEvent, PhiScanEvent
from integrations.sync.models import RecordKind

_SHOWN = 3
_MEDPLUM = "medplum"


def _more(items: list[str]) -> str:
    return "; ".join(items[:_SHOWN]) + (f"; {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _data_class(resource: str) -> str | None:
    try:
        return RecordKind(resource).data_class.value
    except ValueError:
        return None


def consent_never_bypassed(spec: Invariant, ctx: CheckContext) -> Verdict:
    threshold = "no record synced after its consent was refused, unless consent was granted again"
    refused: dict[tuple[str, str], float] = {}
    granted: list[tuple[float, frozenset[str]]] = []
    bypasses: list[str] = []
    refusals = read = 0
    for e in sorted(ctx.events, key=lambda e: e.t):
        read += isinstance(e, ConsentCheckedEvent | FhirSyncEvent)
        if isinstance(e, ConsentCheckedEvent) and e.status == "granted":
            granted.append((e.t, frozenset(e.data_class.split(","))))
        elif isinstance(e, FhirSyncEvent) and e.error == "ConsentDenied":
            refused[(e.resource, e.record_id)] = e.t
            refusals += 1
        elif isinstance(e, FhirSyncEvent) and e.kind == "fhir_sync.completed":
            since = refused.get((e.resource, e.record_id))
            if since is None:
                continue
            needed = _data_class(e.resource)
            regranted = any(since < t <= e.t and (needed is None or needed in classes) for t, classes in granted)
            if regranted:
                del refused[(e.resource, e.record_id)]
            else:
                bypasses.append(f"{e.resource} {e.record_id} synced at {e.t:g}s after consent was refused at "
                                f"{since:g}s, with no {needed or 'granted'} consent check in between")
    if bypasses:
        return Verdict(False, len(bypasses), "bypasses", threshold, _more(bypasses), matched=read)
    if not read:
        return Verdict(True, 0, "bypasses", threshold, "", matched=0, empty="no consent check and no record sync")
    denied = sum(1 for e in ctx.events if isinstance(e, ConsentCheckedEvent) and e.status != "granted")
    return Verdict(True, 0, "bypasses", threshold,
                   f"{refusals} sync(s) refused for consent, none synced afterwards without a new grant; "
                   f"{denied} consent check(s) denied or missing", matched=read)


def no_phi_to_medplum(spec: Invariant, ctx: CheckContext) -> Verdict:
    threshold = "every resource Medplum received is de-identified (phi.scan finds no PHI element)"
    scans = [e for e in ctx.events if isinstance(e, PhiScanEvent) and e.vendor == _MEDPLUM]
    leaks = [f"{e.resource_type}/{e.resource_id} at {e.t:g}s carried {', '.join(e.phi_elements)}"
             + (f" [{e.correlation_id}]" if e.correlation_id else "") for e in scans if e.phi_elements]
    if leaks:
        return Verdict(False, len(leaks), "resources", threshold, _more(leaks), matched=len(scans))
    synced = sum(1 for e in ctx.events if isinstance(e, FhirSyncEvent) and e.kind == "fhir_sync.completed")
    if not scans:
        why = (f"{synced} sync(s) reached Medplum but the journal holds no phi.scan event to judge them by"
               if synced else "no resource reached Medplum and none was scanned")
        return Verdict(True, 0, "resources", threshold, "", matched=0, empty=why)
    return Verdict(True, 0, "resources", threshold,
                   f"{len(scans)} resource(s) scanned, none with PHI; {synced} sync(s) completed", matched=len(scans))


def every_write_audited(spec: Invariant, ctx: CheckContext) -> Verdict:
    threshold = "each sync to Medplum (completed or failed) has an audit event with its correlation id"
    audits: dict[str, set[tuple[str, str]]] = {}
    for e in ctx.events:
        if isinstance(e, AuditRecordedEvent):
            audits.setdefault(e.correlation_id, set()).add((e.event_type, e.outcome))
    missing: list[str] = []
    writes = 0
    for e in ctx.events:
        if not isinstance(e, FhirSyncEvent) or e.kind == "fhir_sync.enqueue_failed":
            continue  # an enqueue failure wrote nothing: reconciliation finds the record
        writes += 1
        ok = e.kind == "fhir_sync.completed"
        wanted = "FHIR_SYNC" if ok else "FHIR_SYNC_FAILED"
        found = audits.get(e.correlation_id or "", set())
        if not any(kind == wanted and (outcome == "success") == ok for kind, outcome in found):
            missing.append(f"{e.kind} of {e.resource} {e.record_id} at {e.t:g}s [{e.correlation_id}] has no "
                           f"{wanted} audit" + (f" (found {sorted(found)})" if found else ""))
    if missing:
        return Verdict(False, len(missing), "unaudited", threshold, _more(missing), matched=writes)
    if not writes:
        return Verdict(True, 0, "unaudited", threshold, "", matched=0, empty="no sync write to Medplum")
    return Verdict(True, 0, "unaudited", threshold,
                   f"{writes} sync write(s), each audited; {sum(len(v) for v in audits.values())} audit event(s)",
                   matched=writes)
