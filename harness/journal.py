"""The run journal: typed events stamped with scenario time, the single source of truth of a run.

Checks and reports read the journal, never live objects. Every event has `t` (seconds since the
scenario started, on the scenario's clock, rounded to the microsecond) and a `kind`; the rest are
typed fields. Written as JSON Lines, one event per line, fields in declaration order, so the same
run gives the same bytes. Nothing here carries a token, a secret or a resource body: requests are
logged by URL path only (the query string can carry patient identifiers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from integrations.clock import Clock

Scalar = str | int | float | bool | None


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    t: float


class ScenarioStarted(_Event):
    kind: Literal["scenario.start"] = "scenario.start"
    scenario: str
    file: str
    seed: int
    mode: str
    duration_s: float


class ScenarioEnded(_Event):
    kind: Literal["scenario.end"] = "scenario.end"
    scenario: str
    operations: int
    in_flight_cancelled: int


class FaultStarted(_Event):
    kind: Literal["fault.start"] = "fault.start"
    fault_id: str
    fault: str
    target: str
    params: dict[str, Scalar]


class FaultStopped(_Event):
    kind: Literal["fault.stop"] = "fault.stop"
    fault_id: str
    fault: str
    target: str


class FaultFailed(_Event):
    kind: Literal["fault.error"] = "fault.error"
    fault_id: str
    fault: str
    target: str
    action: Literal["start", "stop"]
    error: str


class RequestEvent(_Event):
    kind: Literal["request"] = "request"
    vendor: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    attempt: int
    error: str | None
    correlation_id: str


class RetryEvent(_Event):
    kind: Literal["retry.scheduled"] = "retry.scheduled"
    vendor: str
    attempt: int
    delay_s: float
    reason: str
    retry_after_s: float | None


class BreakerEvent(_Event):
    kind: Literal["breaker.transition"] = "breaker.transition"
    breaker: str
    from_state: str
    to_state: str
    failure_rate: float | None
    calls: int


class TokenIssuedEvent(_Event):
    kind: Literal["token.issued"] = "token.issued"
    vendor: str
    expires_in_s: float
    reason: str


class TokenRefreshedEvent(_Event):
    kind: Literal["token.refreshed"] = "token.refreshed"
    vendor: str
    expires_in_s: float
    reason: str


class TokenFailedEvent(_Event):
    kind: Literal["token.failed"] = "token.failed"
    vendor: str
    status: int | None
    error: str


class OperationEvent(_Event):
    """One workload operation finished (`t` is its end); what a user of the integration saw."""

    kind: Literal["operation"] = "operation"
    op_id: int
    operation: str
    vendor: str
    started: float
    duration_ms: float
    ok: bool
    error: str | None


class OperationDropped(_Event):
    """The workload wanted to start an operation but too many were in flight."""

    kind: Literal["operation.dropped"] = "operation.dropped"
    operation: str
    vendor: str
    in_flight: int


class CheckPassed(_Event):
    kind: Literal["check.passed"] = "check.passed"
    check: str
    observed: Scalar
    threshold: str


class CheckFailed(_Event):
    kind: Literal["check.failed"] = "check.failed"
    check: str
    observed: Scalar
    threshold: str


JournalEvent = Annotated[
    ScenarioStarted | ScenarioEnded | FaultStarted | FaultStopped | FaultFailed | RequestEvent | RetryEvent
    | BreakerEvent | TokenIssuedEvent | TokenRefreshedEvent | TokenFailedEvent | OperationEvent
    | OperationDropped | CheckPassed | CheckFailed,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[JournalEvent] = TypeAdapter(JournalEvent)

E = TypeVar("E", bound=_Event)
Listener = Callable[[_Event], None]


def _stamp(seconds: float) -> float:
    return round(seconds, 6) + 0.0  # `+ 0.0` turns -0.0 into 0.0


class Journal:
    """An append-only list of events for one scenario run, with live listeners."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._origin = clock.monotonic()
        self._events: list[_Event] = []
        self._listeners: list[Listener] = []

    def elapsed(self) -> float:
        """Scenario time now: seconds since the journal (the scenario) started."""
        return _stamp(self._clock.monotonic() - self._origin)

    def restart(self) -> None:
        """Make scenario time zero now (after the lab is built, before the timeline plays)."""
        self._origin = self._clock.monotonic()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add(self, event: _Event) -> None:
        self._events.append(event)
        for listener in self._listeners:
            listener(event)

    @property
    def events(self) -> list[_Event]:
        return list(self._events)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self._events if isinstance(e, kind)]

    def lines(self) -> Iterable[str]:
        for event in self._events:
            yield event.model_dump_json()


def parse_line(line: str) -> _Event:
    """Read one journal line back into its typed event."""
    event: _Event = _ADAPTER.validate_json(line)
    return event


def read_journal(path: Path) -> list[_Event]:
    with path.open(encoding="utf-8") as handle:
        return [parse_line(line) for line in handle if line.strip()]


def stamp(seconds: float) -> float:
    """Round a scenario time the way the journal does."""
    return _stamp(seconds)


Event = _Event
