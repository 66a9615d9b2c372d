"""Every integration event the components emit has a journal event: `integration_entry` maps it, the
line parses back to the same typed event, and the runner's listener adds it to the journal."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing

import pytest

from harness.clock import VirtualClock, run_virtual
from harness.journal import Journal, integration_entry, parse_line
from harness.runner import journal_listener
from integrations.events import BreakerState, BreakerTransitioned, IntegrationEvent, JobCompleted

EVENT_TYPES = typing.get_args(IntegrationEvent)


def _sample(kind: object) -> object:
    """A value of a field's type: the first member of a union or an enum, a tuple of strings, a scalar."""
    if isinstance(kind, types.UnionType):
        return _sample(typing.get_args(kind)[0])
    if typing.get_origin(kind) is tuple:
        return ("a", "b")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    return {str: "x", int: 2, float: 1.5, bool: True}[kind]  # type: ignore[index]


def _instance(cls: type) -> IntegrationEvent:
    hints = typing.get_type_hints(cls)
    event: IntegrationEvent = cls(**{field.name: _sample(hints[field.name]) for field in dataclasses.fields(cls)})
    return event


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda cls: cls.__name__)
def test_every_integration_event_has_a_journal_line_that_parses_back(cls: type) -> None:
    entry = integration_entry(_instance(cls), 1.25)
    assert entry is not None, f"{cls.__name__} is dropped by the journal"
    assert entry.t == 1.25
    assert parse_line(entry.model_dump_json()) == entry


def test_the_runner_listener_journals_breaker_details_and_job_durations_in_milliseconds() -> None:
    async def main() -> list[str]:
        journal = Journal(VirtualClock())
        listen = journal_listener(journal)
        listen(BreakerTransitioned(name="epic", from_state=BreakerState.CLOSED, to_state=BreakerState.FORCED_OPEN,
                                   failure_rate=None, calls=0, slow_call_rate=0.4, manual=True))
        listen(JobCompleted(queue="sync", job_id="job-1", name="patient.sync", attempt=2, worker="w1",
                            duration_s=0.25))
        return list(journal.lines())

    breaker, job = (parse_line(line) for line in run_virtual(main))
    assert breaker.model_dump(exclude={"t"}) == {
        "kind": "breaker.transition", "breaker": "epic", "from_state": "CLOSED", "to_state": "FORCED_OPEN",
        "failure_rate": None, "calls": 0, "slow_call_rate": 0.4, "manual": True}
    assert job.model_dump(exclude_none=True, exclude={"t"}) == {
        "kind": "job.completed", "queue": "sync", "job_id": "job-1", "name": "patient.sync", "worker": "w1",
        "attempt": 2, "duration_ms": 250.0}
