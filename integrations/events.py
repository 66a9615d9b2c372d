"""Events the integration components emit, and the listener interface that receives them.

Components never write the lab's journal themselves: they call an `EventListener` (a no-op by
default), and whoever runs them decides what to do with the events. The lab turns them into journal
events stamped with scenario time; a production deployment could turn them into logs or metrics.
No event carries a token, a secret or a resource body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """One HTTP attempt finished, with a response or with a transport error."""

    vendor: str
    method: str
    path: str  # URL path only: the query string may carry patient identifiers
    status: int | None  # None when no response arrived
    duration_s: float
    attempt: int  # 1 for the first try
    error: str | None  # connector error class name, None on success
    correlation_id: str


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A failed attempt will be retried after `delay_s`."""

    vendor: str
    attempt: int  # the attempt that failed
    delay_s: float
    reason: str  # error class name
    retry_after_s: float | None  # the server's Retry-After, when it gave one


@dataclass(frozen=True, slots=True)
class BreakerTransitioned:
    """A circuit breaker changed state."""

    name: str
    from_state: BreakerState
    to_state: BreakerState
    failure_rate: float | None  # over the window at the time of the transition, when known
    calls: int  # calls in the window


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """An access token was obtained (`refresh` False for the first one)."""

    vendor: str
    expires_in_s: float
    refresh: bool
    reason: str  # "initial", "expiring", "rejected" (a 401 forced it)


@dataclass(frozen=True, slots=True)
class TokenRequestFailed:
    """The token endpoint refused or could not be reached."""

    vendor: str
    status: int | None
    error: str  # OAuth error code or error class name; never the description's secrets


IntegrationEvent = RequestCompleted | RetryScheduled | BreakerTransitioned | TokenIssued | TokenRequestFailed


class EventListener(Protocol):
    def __call__(self, event: IntegrationEvent) -> None: ...


def ignore_event(event: IntegrationEvent) -> None:
    """The default listener: drop the event."""
