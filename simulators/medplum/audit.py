"""An AuditEvent for each FHIR interaction, as Medplum can be configured to write (reference/vendors.md §3,
"Subscriptions and AuditEvent": the exact shape is not verified beyond Medplum's example data).

`AuditTrail.hook` is the core's `InteractionHook`. Each event is an R4 AuditEvent: `type` rest,
`subtype` the FHIR interaction, `action` C/R/U/D/E, `outcome` 0 (success), 4 (4xx) or 8 (5xx),
`outcomeDesc` the status, `recorded` the interaction's time, `agent.who` the `ClientApplication`,
`entity.what` the resource when there is one. Interactions on AuditEvent itself are not audited (reading
the audit trail would grow it). Nothing but types, ids, statuses and client ids goes into them: no
token, no resource content.

Buffered: the hook keeps one flat tuple per interaction (the time not yet formatted), and `flush()`
writes the pending events to the store (`ResourceStore.record`: no validation, no copies;
`meta.lastUpdated` = `recorded`) whenever anything may look at them: every interaction on AuditEvent,
every system-level or operation call (see `simulators.medplum.auth.medplum_authorizer`),
`MedplumSimulator.audit_events()`. Writing a dozen dicts per call instead made the garbage collector
walk an ever-growing heap and halved read throughput under load (benchmarks/simulator_throughput.py:
read 45 % -> 64 % of a bare endpoint). Ids are drawn from the store's id stream at flush time, so runs
stay deterministic.
"""

from __future__ import annotations

from datetime import datetime

from integrations.clock import Clock
from simulators.fhir.interaction import Interaction
from simulators.fhir.store import ResourceStore, format_instant

_ACTIONS = {Interaction.CREATE: "C", Interaction.UPDATE: "U", Interaction.PATCH: "U", Interaction.DELETE: "D",
            Interaction.OPERATION: "E"}
_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "Restful Operation"}
_INTERACTIONS = "http://hl7.org/fhir/restful-interaction"
#: Each interaction's name as a plain str: pending tuples of atomic values only, which the GC stops tracking.
_NAMES = {interaction: interaction.value for interaction in Interaction}
#: (recorded, client, interaction, resource type, resource id or "", status)
Pending = tuple[datetime, str, str, str, str, int]


def audit_outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


class AuditTrail:
    def __init__(self, store: ResourceStore, clock: Clock, *, observer: str = "medplum") -> None:
        self._store = store
        self._clock = clock
        self._observer = observer
        self._pending: list[Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    def hook(self, client: str, interaction: Interaction, resource_type: str, resource_id: str | None,
             status: int) -> None:
        if resource_type != "AuditEvent":
            self._pending.append((self._clock.now(), client, _NAMES.get(interaction) or str(interaction), resource_type,
                                  resource_id or "", status))

    def flush(self) -> int:
        """Write the pending events to the store, oldest first; returns how many."""
        pending, self._pending = self._pending, []
        for moment, client, interaction, resource_type, resource_id, status in pending:
            recorded = format_instant(moment)
            event: dict[str, object] = {
                "resourceType": "AuditEvent",
                "type": _REST,
                "subtype": [{"system": _INTERACTIONS, "code": interaction, "display": interaction}],
                "action": _ACTIONS.get(Interaction(interaction), "R"),
                "recorded": recorded,
                "outcome": audit_outcome(status),
                "outcomeDesc": str(status),
                "agent": [{"who": {"reference": f"ClientApplication/{client}"}, "requestor": True}],
                "source": {"observer": {"display": self._observer}},
            }
            if resource_id and resource_type != "*":
                event["entity"] = [{"what": {"reference": f"{resource_type}/{resource_id}"}}]
            self._store.record(event, last_updated=recorded)
        return len(pending)
