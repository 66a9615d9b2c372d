"""The journal itself: an append-only list of typed events with live listeners, and its JSON Lines form."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, TypeVar, get_args

from pydantic import Field, TypeAdapter

from harness.journal.base import BASE_FIELDS, Event, stamp, wall_stamp
from harness.journal.connector import (
    BreakerEvent,
    CredentialRejectedEvent,
    RequestEvent,
    RetryEvent,
    ThrottledEvent,
    TokenFailedEvent,
    TokenIssuedEvent,
    TokenRefreshedEvent,
    VersionConflictEvent,
)
from harness.journal.queue import JobEvent, QueueEvent
from harness.journal.resilience import (
    DegradationActivatedEvent,
    DegradationClearedEvent,
    FlagChangedEvent,
    ProviderHealthEvent,
)
from harness.journal.run import (
    CheckFailed,
    CheckPassed,
    FaultFailed,
    FaultStarted,
    FaultStopped,
    LabAborted,
    LabInconclusive,
    LabLag,
    LabTiming,
    OperationDropped,
    OperationEvent,
    ScenarioEnded,
    ScenarioStarted,
    StepDone,
    StepFailed,
)
from harness.journal.sync import (
    AuditMirrorEvent,
    AuditRecordedEvent,
    ConsentCheckedEvent,
    FhirSyncEvent,
    PhiScanEvent,
    ReconciliationEvent,
)
from harness.journal.systems import (
    FailoverExhaustedEvent,
    FailoverReadEvent,
    SyncCompletedEvent,
    SyncConflictsEvent,
    SyncStartedEvent,
    SyncSystemFailedEvent,
)
from harness.journal.vendor import VendorRequestEvent
from integrations.clock import Clock

JournalEvent = Annotated[
    ScenarioStarted | ScenarioEnded | FaultStarted | FaultStopped | FaultFailed | OperationEvent | OperationDropped
    | CheckPassed | CheckFailed | StepDone | StepFailed | LabLag | LabTiming | LabInconclusive | LabAborted
    | RequestEvent | RetryEvent | BreakerEvent | TokenIssuedEvent | TokenRefreshedEvent | TokenFailedEvent
    | CredentialRejectedEvent | ThrottledEvent | VersionConflictEvent
    | ProviderHealthEvent | DegradationActivatedEvent | DegradationClearedEvent | FlagChangedEvent
    | FailoverReadEvent | FailoverExhaustedEvent | SyncStartedEvent | SyncSystemFailedEvent | SyncConflictsEvent
    | SyncCompletedEvent
    | JobEvent | QueueEvent
    | ConsentCheckedEvent | FhirSyncEvent | ReconciliationEvent | AuditMirrorEvent | AuditRecordedEvent | PhiScanEvent
    | VendorRequestEvent,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[JournalEvent] = TypeAdapter(JournalEvent)


def _event_fields() -> dict[str, frozenset[str]]:
    fields: dict[str, set[str]] = {}
    for model in get_args(get_args(JournalEvent)[0]):
        kind_type = model.model_fields["kind"].annotation
        for kind in get_args(kind_type):
            fields.setdefault(kind, set()).update(n for n in model.model_fields if n not in BASE_FIELDS)
    return {kind: frozenset(names) for kind, names in fields.items()}


#: Every event kind the journal can hold, with its fields (for checks that name events by kind).
EVENT_FIELDS: dict[str, frozenset[str]] = _event_fields()

E = TypeVar("E", bound=Event)
Listener = Callable[[Event], None]


class Journal:
    """An append-only list of events for one scenario run, with live listeners. With a `wall_clock` (real
    mode) every event is stamped with that clock's `now()` as it is added (`Event.wall`)."""

    def __init__(self, clock: Clock, *, wall_clock: Clock | None = None) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._origin = clock.monotonic()
        self._events: list[Event] = []
        self._listeners: list[Listener] = []

    def elapsed(self) -> float:
        """Scenario time now: seconds since the journal (the scenario) started."""
        return stamp(self._clock.monotonic() - self._origin)

    def restart(self) -> None:
        """Make scenario time zero now (after the lab is built, before the timeline plays)."""
        self._origin = self._clock.monotonic()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add(self, event: Event) -> None:
        if self._wall_clock is not None and event.wall is None:
            event = event.model_copy(update={"wall": wall_stamp(self._wall_clock.now())})
        self._events.append(event)
        for listener in self._listeners:
            listener(event)

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self._events if isinstance(e, kind)]

    def lines(self) -> Iterable[str]:
        for event in self._events:
            yield event.model_dump_json()  # a virtual event has no "wall" (`Event`'s serializer leaves it out)


def parse_line(line: str) -> Event:
    """Read one journal line back into its typed event."""
    event: Event = _ADAPTER.validate_json(line)
    return event


def read_journal(path: Path) -> list[Event]:
    with path.open(encoding="utf-8") as handle:
        return [parse_line(line) for line in handle if line.strip()]
