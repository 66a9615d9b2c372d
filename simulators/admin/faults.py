"""The chaos faults a simulator can be told to inject, their scopes, and the set currently active.

Fault kinds (each a typed pydantic body of the admin API, so the OpenAPI schema documents it):

    outage          every matching call fails: `status` (default 503) or a dropped connection
    latency         every matching call waits a uniform [min_ms, max_ms] on the injected clock
    error-rate      each matching call fails with `probability`, status drawn from `statuses`
    fail-next       the next `count` matching calls fail (status or drop), then the fault ends
    malformed-body  the response body is invalid JSON, or cut short of its Content-Length
    slow-body       the response body is dribbled in `chunks` over `duration_ms` on the clock

Every fault may carry a `scope`: a path prefix (whole segments: `/fhir/R4/Patient` matches
`/fhir/R4/Patient/1`, not `/fhir/R4/PatientX`), an HTTP method and a client id (resolved per
request by the simulator's client resolver, before the app runs). A fault without a scope matches
every request outside the exempt paths.

`ChaosState` holds the active faults in insertion order (that order decides which of two matching
faults applies first, never a hash). Adding a fault whose kind and scope equal an active one's
replaces it: that keeps the single-fault-per-kind endpoints of the first admin API (`PUT
/admin/chaos/outage` twice leaves one outage) while differently scoped faults of one kind coexist.
Fault ids are `fault-<n>` from a counter, not from the rng, so managing faults never shifts a
random decision of the chaos layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Longest latency the admin API accepts: 10 minutes (beyond that, use an outage).
MAX_LATENCY_MS = 600_000
#: Longest a slow body may take: 10 minutes.
MAX_SLOW_BODY_MS = 600_000
MAX_CHUNKS = 1000
MAX_FAIL_NEXT = 1_000_000
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$")  # RFC 9110 token: an HTTP method
_PATH = re.compile(r"^/[^\s?#]{0,512}$")

ErrorStatus = Annotated[int, Field(ge=400, le=599)]


class FaultScope(BaseModel):
    """Which requests a fault applies to; every field given must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, description="path prefix, whole segments (e.g. /fhir/R4/Patient)")
    method: str | None = Field(default=None, description="HTTP method, e.g. GET")
    client_id: str | None = Field(default=None, min_length=1, max_length=256,
                                  description="the authenticated client the fault hits")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _PATH.match(value):
            raise ValueError("path must start with / and hold no query, fragment or whitespace")
        return value.rstrip("/") or "/"

    @field_validator("method")
    @classmethod
    def _method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _TOKEN.match(value):
            raise ValueError("method must be an HTTP method name")
        return value.upper()

    def matches(self, method: str, path: str, client_id: str | None) -> bool:
        if self.method is not None and method.upper() != self.method:
            return False
        if self.path is not None and self.path != "/" and not (
                path == self.path or path.startswith(self.path + "/")):
            return False
        return self.client_id is None or client_id == self.client_id


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str]

    scope: FaultScope | None = Field(default=None, description="which requests; omitted: every request")

    def spec(self) -> dict[str, object]:
        """The fault's settings without its scope (what the single-fault state keys show)."""
        return self.model_dump(exclude={"scope"}, exclude_none=True)


class Outage(_Fault):
    """Every call fails: an error status with an OperationOutcome, or a dropped connection."""

    kind: ClassVar[str] = "outage"
    mode: Literal["status", "drop"] = "status"
    status: ErrorStatus = 503


class Latency(_Fault):
    """Every call is delayed by a uniform random time in [min_ms, max_ms] milliseconds."""

    kind: ClassVar[str] = "latency"
    min_ms: int = Field(ge=0, le=MAX_LATENCY_MS)
    max_ms: int = Field(ge=0, le=MAX_LATENCY_MS)

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.min_ms > self.max_ms:
            raise ValueError("min_ms must not exceed max_ms")
        return self


class ErrorRate(_Fault):
    """Each call fails with probability `probability`; the status is `status`, or one of `statuses`.

    `status` (one code, the first admin API's field) and `statuses` (a list to draw from uniformly)
    are alternatives; with neither, the status is 500.
    """

    kind: ClassVar[str] = "error-rate"
    probability: float = Field(ge=0.0, le=1.0)
    status: ErrorStatus | None = None
    statuses: list[ErrorStatus] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _one_status_field(self) -> ErrorRate:
        if self.status is not None and self.statuses is not None:
            raise ValueError("give status or statuses, not both")
        if self.status is None and self.statuses is None:
            object.__setattr__(self, "status", 500)
        return self

    def choices(self) -> list[int]:
        return list(self.statuses) if self.statuses is not None else [self.status or 500]


class FailNext(_Fault):
    """The next `count` matching calls fail (status or dropped connection); then the fault ends."""

    kind: ClassVar[str] = "fail-next"
    count: int = Field(ge=1, le=MAX_FAIL_NEXT)
    mode: Literal["status", "drop"] = "status"
    status: ErrorStatus = 503


class MalformedBody(_Fault):
    """The app's response body is damaged: `invalid-json` keeps a prefix as the whole body (so it no
    longer parses), `truncated` declares the full Content-Length, sends a prefix and closes the
    connection. `keep_fraction` is the share of the body kept (at least one byte is always cut)."""

    kind: ClassVar[str] = "malformed-body"
    mode: Literal["invalid-json", "truncated"] = "invalid-json"
    keep_fraction: float = Field(default=0.5, ge=0.0, lt=1.0)


class SlowBody(_Fault):
    """The response body is sent in `chunks` pieces spread over `duration_ms` of the clock."""

    kind: ClassVar[str] = "slow-body"
    duration_ms: int = Field(ge=0, le=MAX_SLOW_BODY_MS)
    chunks: int = Field(default=10, ge=1, le=MAX_CHUNKS)


Fault = Outage | Latency | ErrorRate | FailNext | MalformedBody | SlowBody
FAULT_TYPES: tuple[type[_Fault], ...] = (Outage, Latency, ErrorRate, FailNext, MalformedBody, SlowBody)
KINDS: tuple[str, ...] = tuple(t.kind for t in FAULT_TYPES)
FaultKind = Literal["outage", "latency", "error-rate", "fail-next", "malformed-body", "slow-body"]


def state_key(kind: str) -> str:
    """`error-rate` -> `error_rate`: the kind as a JSON key of the state."""
    return kind.replace("-", "_")


@dataclass(slots=True)
class ActiveFault:
    """A fault in force: its id, settings, how often it applied, and (fail-next) how many calls remain."""

    id: str
    fault: Fault
    injected: int = 0
    remaining: int | None = None

    @property
    def kind(self) -> str:
        return self.fault.kind

    @property
    def scope(self) -> FaultScope | None:
        return self.fault.scope

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "kind": self.kind, **self.fault.spec(),
                                   "scope": None if self.scope is None else self.scope.model_dump(exclude_none=True),
                                   "injected": self.injected}
        if self.remaining is not None:
            body["remaining"] = self.remaining
        return body


@dataclass
class ChaosCounters:
    """How many requests each fault kind has affected since the simulator started (or was reset)."""

    outage: int = 0
    latency: int = 0
    error_rate: int = 0
    fail_next: int = 0
    malformed_body: int = 0
    slow_body: int = 0

    def count(self, kind: str) -> None:
        key = state_key(kind)
        setattr(self, key, getattr(self, key) + 1)

    def to_json(self) -> dict[str, int]:
        return {state_key(kind): getattr(self, state_key(kind)) for kind in KINDS}


class ChaosState:
    """The active faults, shared by the chaos middleware and the admin API.

    `ChaosState(outage=..., latency=..., error_rate=...)` and the `outage` / `latency` /
    `error_rate` attributes keep the first API: reading gives the newest fault of that kind (None
    if none), assigning replaces every fault of that kind with one unscoped fault (None: removes).
    """

    def __init__(self, outage: Outage | None = None, latency: Latency | None = None,
                 error_rate: ErrorRate | None = None) -> None:
        self.faults: list[ActiveFault] = []
        self.injected = ChaosCounters()
        self._next_id = 0
        for fault in (outage, latency, error_rate):
            if fault is not None:
                self.add(fault)

    def __repr__(self) -> str:
        return f"ChaosState(faults={[f'{fault.id}:{fault.kind}' for fault in self.faults]})"

    # -- the first API's single-fault attributes -----------------------------------------------

    @property
    def outage(self) -> Outage | None:
        newest = self.newest("outage")
        return None if newest is None or not isinstance(newest.fault, Outage) else newest.fault

    @outage.setter
    def outage(self, fault: Outage | None) -> None:
        self._set_kind("outage", fault)

    @property
    def latency(self) -> Latency | None:
        newest = self.newest("latency")
        return None if newest is None or not isinstance(newest.fault, Latency) else newest.fault

    @latency.setter
    def latency(self, fault: Latency | None) -> None:
        self._set_kind("latency", fault)

    @property
    def error_rate(self) -> ErrorRate | None:
        newest = self.newest("error-rate")
        return None if newest is None or not isinstance(newest.fault, ErrorRate) else newest.fault

    @error_rate.setter
    def error_rate(self, fault: ErrorRate | None) -> None:
        self._set_kind("error-rate", fault)

    # -- managing faults -----------------------------------------------------------------------

    def add(self, fault: Fault) -> ActiveFault:
        """Activate `fault`, replacing an active fault of the same kind and scope; returns it with its id."""
        self._next_id += 1
        active = ActiveFault(id=f"fault-{self._next_id}", fault=fault,
                             remaining=fault.count if isinstance(fault, FailNext) else None)
        self.faults = [existing for existing in self.faults
                       if not (existing.kind == fault.kind and existing.scope == fault.scope)]
        self.faults.append(active)
        return active

    def get(self, fault_id: str) -> ActiveFault | None:
        return next((fault for fault in self.faults if fault.id == fault_id), None)

    def remove(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [fault for fault in self.faults if fault.id != fault_id]
        return len(self.faults) < before

    def remove_kind(self, kind: str) -> int:
        before = len(self.faults)
        self.faults = [fault for fault in self.faults if fault.kind != kind]
        return before - len(self.faults)

    def clear(self) -> None:
        self.faults = []

    def reset(self) -> None:
        """Clear every fault and every counter."""
        self.faults = []
        self.injected = ChaosCounters()

    def newest(self, kind: str) -> ActiveFault | None:
        return next((fault for fault in reversed(self.faults) if fault.kind == kind), None)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {}
        for kind in KINDS:
            newest = self.newest(kind)
            body[state_key(kind)] = None if newest is None else newest.fault.spec()
        body["faults"] = [fault.to_json() for fault in self.faults]
        body["injected"] = self.injected.to_json()
        return body

    def _set_kind(self, kind: str, fault: Fault | None) -> None:
        self.remove_kind(kind)
        if fault is not None:
            self.add(fault)
