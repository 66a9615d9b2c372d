"""One FHIR R4 AuditEvent (as Medplum writes them: simulators/medplum/audit.py) -> what the mirror stores.

Required, else the event is malformed (`MalformedAuditEvent`, counted in the run's `errors`, never raised
out of a run): `resourceType` AuditEvent, `meta.lastUpdated` and `recorded` as FHIR instants with a zone,
`action` one of C R U D E (mapped to FHIR_CREATE/READ/UPDATE/DELETE/EXECUTE), `outcome` absent or one of
0 4 8 12, `agent` a non-empty list of objects (FHIR: 1..*), `entity` absent or a list of objects.

Kept (references and codes only): each agent's `who.reference`, first `type` code and `requestor`; each
entity's `what.reference` and its `type`, `role`, `lifecycle` codes; the `subtype` codes; `source.observer`
(its reference, else a short display); `outcomeDesc` only when it is an HTTP status. A reference that is not
`Type/id` (after dropping an absolute base and `_history`) is dropped, as is a code that is not code-like:
nothing free-form is stored. Never kept: `agent.name`, `agent.altId`, `agent.network`, `entity.name`,
`entity.description`, `entity.query` (base64 of a search, which can name a patient), `entity.detail`.

Organisation (runbook 002 §2.6 "Parses org ID from FHIR extensions or entity references"): the event's
`https://holilabs.xyz/fhir/org-id` extension (`valueString`/`valueId`/`valueCode`, or a `valueReference`
to an Organization), else the first entity that is an `Organization/...` reference, else None. Medplum's
own AuditEvents carry neither, so theirs are mirrored with no organisation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from integrations.fhir import FhirResource, JsonValue
from integrations.sync.audit_mirror_models import (
    ACTION_EVENT_TYPES,
    AuditAgent,
    AuditEntity,
    MalformedAuditEvent,
    MirrorEventType,
)
from integrations.sync.deid import ORG_EXTENSION_URL
from integrations.sync.models import CODE

#: `Type/id` (an absolute base and `/_history/n` dropped). `_` is allowed in the id, though FHIR ids have none:
#: the runbook's own ids (`Practitioner/prac_123`, `Organization/org_abc123`) use it.
REFERENCE = re.compile(r"(?:https?://\S+/)?([A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-._]{1,64})(?:/_history/[A-Za-z0-9\-.]+)?")
ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
DISPLAY = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,63}")
STATUS = re.compile(r"[1-5][0-9]{2}")
OUTCOMES = frozenset({"0", "4", "8", "12"})


@dataclass(frozen=True, slots=True)
class ParsedAuditEvent:
    fhir_id: str
    recorded: datetime
    last_updated: datetime
    event_type: MirrorEventType
    org_id: str | None
    action: str
    outcome: str | None
    outcome_desc: str | None
    subtype: tuple[str, ...]
    observer: str | None
    agents: tuple[AuditAgent, ...]
    entities: tuple[AuditEntity, ...]


def instant(value: JsonValue) -> datetime | None:
    """A FHIR instant (`2024-01-15T10:00:00.000Z`) with a zone, else None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def last_updated(resource: FhirResource) -> datetime | None:
    meta = resource.body.get("meta")
    return instant(meta.get("lastUpdated")) if isinstance(meta, Mapping) else None


def _reference(value: JsonValue) -> str | None:
    if not isinstance(value, Mapping):
        return None
    ref = value.get("reference")
    match = REFERENCE.fullmatch(ref) if isinstance(ref, str) else None
    return match.group(1) if match else None


def _code(value: JsonValue) -> str | None:
    """The code of a Coding, or the first code of a CodeableConcept, if it is code-like."""
    if not isinstance(value, Mapping):
        return None
    codings = value.get("coding")
    if isinstance(codings, list):
        value = codings[0] if codings else None
        if not isinstance(value, Mapping):
            return None
    code = value.get("code")
    return code if isinstance(code, str) and CODE.fullmatch(code) else None


def _objects(body: Mapping[str, JsonValue], key: str, *, required: bool) -> list[Mapping[str, JsonValue]]:
    value = body.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or not all(isinstance(v, Mapping) for v in value):
        raise MalformedAuditEvent(f"AuditEvent.{key} must be a {'non-empty ' if required else ''}list of objects")
    return [v for v in value if isinstance(v, Mapping)]


def _org_id(body: Mapping[str, JsonValue], entities: tuple[AuditEntity, ...]) -> str | None:
    extensions = body.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if not isinstance(ext, Mapping) or ext.get("url") != ORG_EXTENSION_URL:
            continue
        for key in ("valueString", "valueId", "valueCode"):
            value = ext.get(key)
            if isinstance(value, str) and ORG_ID.fullmatch(value):
                return value
        ref = _reference(ext.get("valueReference"))
        if ref is not None and ref.startswith("Organization/"):
            return ref.removeprefix("Organization/")
    for entity in entities:
        if entity.what is not None and entity.what.startswith("Organization/"):
            return entity.what.removeprefix("Organization/")
    return None


def _observer(body: Mapping[str, JsonValue]) -> str | None:
    source = body.get("source")
    observer = source.get("observer") if isinstance(source, Mapping) else None
    if not isinstance(observer, Mapping):
        return None
    display = observer.get("display")
    return _reference(observer) or (display if isinstance(display, str) and DISPLAY.fullmatch(display) else None)


def parse_audit_event(resource: FhirResource) -> ParsedAuditEvent:
    """See the module docstring; raises `MalformedAuditEvent`."""
    body = resource.body
    if resource.resource_type != "AuditEvent":
        raise MalformedAuditEvent(f"expected an AuditEvent, got a {resource.resource_type}")
    updated = last_updated(resource)
    if updated is None:
        raise MalformedAuditEvent("AuditEvent.meta.lastUpdated is missing or not an instant")
    recorded = instant(body.get("recorded"))
    if recorded is None:
        raise MalformedAuditEvent("AuditEvent.recorded is missing or not an instant")
    action = body.get("action")
    if not isinstance(action, str) or action not in ACTION_EVENT_TYPES:
        raise MalformedAuditEvent("AuditEvent.action is missing or not one of C, R, U, D, E")
    outcome = body.get("outcome")
    if outcome is not None and (not isinstance(outcome, str) or outcome not in OUTCOMES):
        raise MalformedAuditEvent("AuditEvent.outcome is not one of 0, 4, 8, 12")
    agents = tuple(AuditAgent(who=_reference(a.get("who")), type=_code(a.get("type")),
                              requestor=r if isinstance(r := a.get("requestor"), bool) else None)
                   for a in _objects(body, "agent", required=True))
    entities = tuple(AuditEntity(what=_reference(e.get("what")), type=_code(e.get("type")), role=_code(e.get("role")),
                                 lifecycle=_code(e.get("lifecycle")))
                     for e in _objects(body, "entity", required=False))
    subtypes = body.get("subtype")
    subtype = tuple(c for c in (_code(s) for s in (subtypes if isinstance(subtypes, list) else [])) if c is not None)
    desc = body.get("outcomeDesc")
    return ParsedAuditEvent(
        fhir_id=resource.id, recorded=recorded, last_updated=updated, event_type=ACTION_EVENT_TYPES[action],
        org_id=_org_id(body, entities), action=action, outcome=outcome,
        outcome_desc=desc if isinstance(desc, str) and STATUS.fullmatch(desc) else None, subtype=subtype,
        observer=_observer(body), agents=agents, entities=entities)
