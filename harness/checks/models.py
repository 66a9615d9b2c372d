"""Expectations a scenario states, as typed models (`check:` selects the model).

SLA bands and alert rules from the catalogue (`sla_band`, `alert_rule`) are in `sla_models`, the
journal invariants (`invariant`) in `invariant_models`.

Each becomes one check with an observed value, a threshold, a verdict and a citation. Breaker
expectations encode runbook 000_030ea53f0735abf7.txt §2 (breaker opens under an outage, half-opens
after 60 s); success-rate and latency bands come from §7 of the same runbook.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.checks.base import CheckBase, Ratio
from harness.checks.invariant_models import Invariant
from harness.checks.sla_models import AlertRule, SlaBand
from harness.durations import Duration
from harness.names import VendorName


class BreakerOpens(CheckBase):
    """The vendor's breaker goes OPEN within `within` of the first fault on that vendor."""

    check: Literal["breaker_opens"]
    vendor: VendorName
    within: Duration = 30.0


class BreakerHalfOpens(CheckBase):
    """After each opening, the breaker is HALF_OPEN `after` later (±`tolerance`), 000 §2: 60 s."""

    check: Literal["breaker_half_opens"]
    vendor: VendorName
    after: Duration = 60.0
    tolerance: Duration = 1.0


class BreakerCloses(CheckBase):
    """The breaker is CLOSED again within `within` of the end of the last fault on that vendor."""

    check: Literal["breaker_closes"]
    vendor: VendorName
    within: Duration = 90.0


class BreakerStaysClosed(CheckBase):
    """The breaker never opens (for faults the retry layer must absorb)."""

    check: Literal["breaker_stays_closed"]
    vendor: VendorName


class _OperationScope(CheckBase):
    """Which workload operations a check judges: a vendor's (or all), optionally only those started in
    `between: [from, to)` (scenario times), optionally leaving out those overlapping a fault window."""

    vendor: VendorName | None = None
    between: tuple[Duration, Duration] | None = None
    outside_faults: bool = True
    grace: Duration = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> _OperationScope:
        if self.between is not None and self.between[1] <= self.between[0]:
            raise ValueError(f"between: {self.between[0]:g}s to {self.between[1]:g}s is empty")
        return self


class SuccessRate(_OperationScope):
    """Share of workload operations that succeeded, at least `min`.

    With `outside_faults`, operations overlapping a fault window (extended by `grace` after its end,
    the time recovery is allowed to take) are left out: the steady state the runbook promises.
    """

    check: Literal["success_rate"]
    min: Ratio
    min_operations: int = Field(default=1, ge=0)


class LatencyPercentile(_OperationScope):
    """The latency of successful operations is at most `max`: their `percentile` (nearest rank), or with
    `statistic: mean` their average, the figure of 000 §7 ("Avg Latency": < 500 ms healthy)."""

    check: Literal["latency"]
    max: Duration
    statistic: Literal["percentile", "mean"] = "percentile"
    percentile: float = Field(default=95.0, gt=0.0, le=100.0)


class RecoveryTime(CheckBase):
    """From the end of the last fault on `vendor` to the first successful operation after which
    operations keep succeeding for `stable_for`: at most `max`."""

    check: Literal["recovery_time"]
    vendor: VendorName
    max: Duration
    stable_for: Duration = 30.0


class NoCredentialRejected(CheckBase):
    """No vendor refused any of the integration's credentials (`credential.rejected` journal events), at most
    `max`. Runbooks 000_030ea53f0735abf7.txt §1 and 002_437ee203264dfa64.txt §10.2 rotate by deploying the
    new credential before revoking the old one: done in that order, no credential is ever refused."""

    check: Literal["no_credential_rejected"]
    vendor: VendorName | None = None
    max: int = Field(default=0, ge=0)


class EventCount(CheckBase):
    """The journal holds between `min` and `max` events of `kind` (e.g. `degradation.activated`,
    `version.conflict`, `request`), optionally only those whose fields equal `where` (e.g. `{vendor: epic,
    status: 429}`) and only those at scenario times in `between: [from, to)`. The lab's way to say "this
    must (or must not) have happened" about anything the journal records."""

    check: Literal["events"]
    kind: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)*$")
    where: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    between: tuple[Duration, Duration] | None = None
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _known(self) -> EventCount:
        from harness.journal.store import EVENT_FIELDS

        fields = EVENT_FIELDS.get(self.kind)
        if fields is None:
            raise ValueError(f"unknown event kind {self.kind!r} (known: {', '.join(sorted(EVENT_FIELDS))})")
        unknown = sorted(set(self.where) - fields)
        if unknown:
            raise ValueError(f"{self.kind} events have no field {', '.join(unknown)} (fields: "
                             f"{', '.join(sorted(fields))})")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        if self.min == 0 and self.max is None:
            raise ValueError("give min or max: with neither the check cannot fail")
        if self.between is not None and self.between[1] <= self.between[0]:
            raise ValueError(f"between: {self.between[0]:g}s to {self.between[1]:g}s is empty")
        return self

    def default_name(self) -> str:
        where = ",".join(f"{k}={v}" for k, v in sorted(self.where.items()))
        return f"events[{self.kind}" + (f",{where}" if where else "") + "]"


Expectation = Annotated[
    BreakerOpens | BreakerHalfOpens | BreakerCloses | BreakerStaysClosed | SuccessRate | LatencyPercentile
    | RecoveryTime | NoCredentialRejected | SlaBand | AlertRule | Invariant | EventCount,
    Field(discriminator="check"),
]
