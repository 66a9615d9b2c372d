"""Expectations a scenario states, as typed models (`check:` selects the model).

SLA bands and alert rules from the catalogue (`sla_band`, `alert_rule`) are in `sla_models`, the
journal invariants (`invariant`) in `invariant_models`, the vendor-side checks (`no_hammering`,
`retry_after_honoured`, `no_token_storm`, judged from what the vendors saw) in `vendor_models`; scenario
times that name a fault (`"outage@epic end + 30s"`) in `anchors`; what `events.where` may compare in `event_domains`.

Each becomes one check with an observed value, a threshold, a verdict, a citation and what it matched
(`allow_empty` in `base`). Breaker expectations encode runbook 000_030ea53f0735abf7.txt §2 (breaker opens
under an outage, half-opens after 60 s); success-rate and latency bands come from §7 of the same runbook.

Breakers are named as the journal names them: the lab's client of a vendor has a breaker named by the
vendor (`epic`); with `setup.failover` the systems registry's are named by system (`epic_prod`,
`harness.failover_layer`). A breaker check takes `breaker: <name>`, or `vendor: <vendor>`, which the
scenario resolves to that vendor's one breaker in its setup (`Scenario.breakers`): the failover system's
when the lab's own client of the vendor carries no traffic, and an error listing both when both do.

Faults that are background conditions (`background: true`: a WAN latency, a lowered quota for the whole
run) are not "the first fault" or "the last fault" of a check; `fault: <name>` picks one fault instead.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.checks.anchors import FaultName, TimePoint
from harness.checks.base import CheckBase, Ratio
from harness.checks.event_domains import WhereValue, where_problems
from harness.checks.invariant_models import BreakerName, Invariant
from harness.checks.sla_models import AlertRule, SlaBand
from harness.checks.vendor_models import NoHammering, NoTokenStorm, RetryAfterHonoured
from harness.durations import Duration
from harness.names import VendorName


class _BreakerCheck(CheckBase):
    """A check on one breaker: `breaker: <name>` or `vendor: <vendor>` (resolved by the scenario), not both."""

    vendor: VendorName | None = None
    breaker: BreakerName | None = Field(default=None, description=(
        "the breaker by its journal name: a vendor's (epic) or a failover system's (epic_prod)"))

    @model_validator(mode="after")
    def _one_breaker(self) -> _BreakerCheck:
        if (self.vendor is None) == (self.breaker is None):
            raise ValueError("give vendor or breaker (one of them)")
        return self

    def breaker_name(self) -> str:
        """The breaker's journal name: `breaker`, as given or resolved from `vendor` by the scenario."""
        name = self.breaker or self.vendor
        assert name is not None
        return name

    def default_name(self) -> str:
        return f"{self.check}[{self.vendor or self.breaker}]"  # type: ignore[attr-defined]


class BreakerOpens(_BreakerCheck):
    """The breaker goes OPEN within `within` of the start of the first fault on its vendor (background
    conditions aside), or of the fault named by `fault`. Matched: the breaker's transitions. Matched nothing:
    no such fault, or a breaker that saw no call and made no transition."""

    check: Literal["breaker_opens"]
    within: Duration = 30.0
    fault: FaultName | None = None


class BreakerHalfOpens(_BreakerCheck):
    """After each opening, the breaker is HALF_OPEN `after` later (±`tolerance`), 000 §2: 60 s. Matched: the
    openings judged. Matched nothing: the breaker never opened (long enough before the end to judge)."""

    check: Literal["breaker_half_opens"]
    after: Duration = 60.0
    tolerance: Duration = 1.0


class BreakerCloses(_BreakerCheck):
    """The breaker is CLOSED again, and stays so, within `within` of the end of the last fault on its vendor
    (background conditions aside), or of the fault named by `fault`. Matched: the breaker's transitions.
    Matched nothing: no such fault, a fault that never ended, or a breaker that never left CLOSED (nothing
    to close again: use `breaker_stays_closed`)."""

    check: Literal["breaker_closes"]
    within: Duration = 90.0
    fault: FaultName | None = None


class BreakerStaysClosed(_BreakerCheck):
    """The breaker never opens (for faults the retry layer must absorb). Matched: the breaker's transitions
    and the requests it let through. Matched nothing: a breaker that saw no call."""

    check: Literal["breaker_stays_closed"]


class _OperationScope(CheckBase):
    """Which workload operations a check judges: a vendor's (or all), optionally only those started in
    `between: [from, to)` (scenario times or fault anchors, `anchors`), optionally leaving out those
    overlapping a fault window (background conditions are not fault windows here)."""

    vendor: VendorName | None = None
    between: tuple[TimePoint, TimePoint] | None = None
    outside_faults: bool = True
    grace: Duration = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> _OperationScope:
        _check_between(self.between)
        return self


def _check_between(between: tuple[float | object, float | object] | None) -> None:
    if between is None:
        return
    begin, end = between
    if isinstance(begin, float) and isinstance(end, float) and end <= begin:
        from harness.scenario.issues import located  # here: harness.scenario imports this module

        raise located(("between",), f"between: {begin:g}s to {end:g}s is empty")


class SuccessRate(_OperationScope):
    """Share of workload operations that succeeded, at least `min`.

    With `outside_faults`, operations overlapping a fault window (extended by `grace` after its end,
    the time recovery is allowed to take) are left out: the steady state the runbook promises.
    Matched: the operations in scope. Matched nothing: none in scope.
    """

    check: Literal["success_rate"]
    min: Ratio
    min_operations: int = Field(default=1, ge=0)


class LatencyPercentile(_OperationScope):
    """The latency of successful operations is at most `max`: their `percentile` (nearest rank), or with
    `statistic: mean` their average, the figure of 000 §7 ("Avg Latency": < 500 ms healthy). Matched: the
    successful operations in scope. Matched nothing: none."""

    check: Literal["latency"]
    max: Duration
    statistic: Literal["percentile", "mean"] = "percentile"
    percentile: float = Field(default=95.0, gt=0.0, le=100.0, allow_inf_nan=False)


class RecoveryTime(CheckBase):
    """From the end of the last fault on `vendor` (background conditions aside; or of the fault named by
    `fault`) to the first successful operation after which operations keep succeeding for `stable_for`: at
    most `max`. Matched: the operations on the vendor started after the fault ended. Matched nothing: no
    such fault, a fault that never ended, or no operation after it."""

    check: Literal["recovery_time"]
    vendor: VendorName
    max: Duration
    stable_for: Duration = 30.0
    fault: FaultName | None = None


class NoCredentialRejected(CheckBase):
    """No vendor refused any of the integration's credentials (`credential.rejected` journal events), at most
    `max`. Runbooks 000_030ea53f0735abf7.txt §1 and 002_437ee203264dfa64.txt §10.2 rotate by deploying the
    new credential before revoking the old one: done in that order, no credential is ever refused. Matched:
    the events where the vendor saw a credential (requests, token grants and failures, rejections).
    Matched nothing: the vendor was never called."""

    check: Literal["no_credential_rejected"]
    vendor: VendorName | None = None
    max: int = Field(default=0, ge=0)


class EventCount(CheckBase):
    """The journal holds between `min` and `max` events of `kind` (e.g. `degradation.activated`,
    `version.conflict`, `request`), optionally only those whose fields equal `where` (e.g. `{vendor: epic,
    status: 429}`) and only those at scenario times in `between: [from, to)` (durations or fault anchors).
    The lab's way to say "this must (or must not) have happened" about anything the journal records.

    `where` is checked when the file is loaded: each key must be a field of the kind, each value of the
    field's type and domain (`event_domains`; breaker names and failover systems against the setup). It is
    an equality, one value per field. Matched: the events found. Matched nothing: none found where `min`
    needs some; with `max` only, none found is the pass the check is for, so `allow_empty` does not apply."""

    check: Literal["events"]
    kind: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)*$")
    where: dict[str, WhereValue] = Field(default_factory=dict)
    between: tuple[TimePoint, TimePoint] | None = None
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)

    @field_validator("where")
    @classmethod
    def _where_can_match(cls, where: dict[str, WhereValue], info: ValidationInfo) -> dict[str, WhereValue]:
        odd = sorted(f"where.{k}" for k, v in where.items() if isinstance(v, float) and not math.isfinite(v))
        if odd:  # NaN equals nothing, infinity no journal value: `max` would pass on nothing
            raise ValueError(f"{', '.join(odd)}: NaN and infinity can never match an event's value")
        kind = info.data.get("kind")
        if isinstance(kind, str):
            from harness.journal.store import EVENT_FIELDS

            if kind in EVENT_FIELDS:
                problems = where_problems(kind, where)
                if problems:
                    raise ValueError("; ".join(problems))
        return where

    @model_validator(mode="after")
    def _known(self) -> EventCount:
        from harness.journal.store import EVENT_FIELDS

        fields = EVENT_FIELDS.get(self.kind)
        if fields is None:
            raise ValueError(f"unknown event kind {self.kind!r} (known: {', '.join(sorted(EVENT_FIELDS))})")
        if self.max is not None and self.max < self.min:
            from harness.scenario.issues import located  # here: harness.scenario imports this module

            raise located(("max",), f"max ({self.max}) is below min ({self.min})")
        if self.min == 0 and self.max is None:
            raise ValueError("give min or max: with neither the check cannot fail")
        if self.allow_empty:
            raise ValueError("allow_empty does not apply to events: with max only, none found already passes; "
                             "with min, none found is the failure the check is for")
        _check_between(self.between)
        return self

    def default_name(self) -> str:
        where = ",".join(f"{k}={v}" for k, v in sorted(self.where.items()))
        return f"events[{self.kind}" + (f",{where}" if where else "") + "]"


Expectation = Annotated[
    BreakerOpens | BreakerHalfOpens | BreakerCloses | BreakerStaysClosed | SuccessRate | LatencyPercentile
    | RecoveryTime | NoCredentialRejected | SlaBand | AlertRule | Invariant | EventCount
    | NoHammering | RetryAfterHonoured | NoTokenStorm,
    Field(discriminator="check"),
]
BREAKER_CHECKS = (BreakerOpens, BreakerHalfOpens, BreakerCloses, BreakerStaysClosed)
