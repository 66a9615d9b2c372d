"""Expectations a scenario states, as typed models (`check:` selects the model).

Each becomes one check with an observed value, a threshold, a verdict and a citation. Breaker
expectations encode runbook 000_030ea53f0735abf7.txt §2 (breaker opens under an outage, half-opens
after 60 s); success-rate and latency bands come from §7 of the same runbook.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.durations import Duration
from harness.names import VendorName


def _parse_ratio(value: object) -> object:
    """`99%` or `99.5 %` -> 0.99 / 0.995; a number is taken as a ratio in [0, 1]."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected a percentage like 99% or a ratio like 0.99, got {value!r}") from None
    return value


Ratio = Annotated[float, BeforeValidator(_parse_ratio), Field(ge=0.0, le=1.0)]


class _CheckBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="report name; defaults to check[vendor]")
    source: str | None = Field(default=None, description="runbook citation; defaults to the scenario's first")

    def default_name(self) -> str:
        vendor = getattr(self, "vendor", None)
        check: str = self.check  # type: ignore[attr-defined]
        return f"{check}[{vendor}]" if vendor else check

    def label(self) -> str:
        return self.name or self.default_name()


class BreakerOpens(_CheckBase):
    """The vendor's breaker goes OPEN within `within` of the first fault on that vendor."""

    check: Literal["breaker_opens"]
    vendor: VendorName
    within: Duration = 30.0


class BreakerHalfOpens(_CheckBase):
    """After each opening, the breaker is HALF_OPEN `after` later (±`tolerance`), 000 §2: 60 s."""

    check: Literal["breaker_half_opens"]
    vendor: VendorName
    after: Duration = 60.0
    tolerance: Duration = 1.0


class BreakerCloses(_CheckBase):
    """The breaker is CLOSED again within `within` of the end of the last fault on that vendor."""

    check: Literal["breaker_closes"]
    vendor: VendorName
    within: Duration = 90.0


class BreakerStaysClosed(_CheckBase):
    """The breaker never opens (for faults the retry layer must absorb)."""

    check: Literal["breaker_stays_closed"]
    vendor: VendorName


class SuccessRate(_CheckBase):
    """Share of workload operations that succeeded, at least `min`.

    With `outside_faults`, operations overlapping a fault window (extended by `grace` after its end,
    the time recovery is allowed to take) are left out: the steady state the runbook promises.
    """

    check: Literal["success_rate"]
    min: Ratio
    vendor: VendorName | None = None
    outside_faults: bool = True
    grace: Duration = 0.0
    min_operations: int = Field(default=1, ge=0)


class LatencyPercentile(_CheckBase):
    """The latency of successful operations is at most `max`: their `percentile` (nearest rank), or with
    `statistic: mean` their average, the figure of 000 §7 ("Avg Latency": < 500 ms healthy)."""

    check: Literal["latency"]
    max: Duration
    statistic: Literal["percentile", "mean"] = "percentile"
    percentile: float = Field(default=95.0, gt=0.0, le=100.0)
    vendor: VendorName | None = None
    outside_faults: bool = True
    grace: Duration = 0.0


class RecoveryTime(_CheckBase):
    """From the end of the last fault on `vendor` to the first successful operation after which
    operations keep succeeding for `stable_for`: at most `max`."""

    check: Literal["recovery_time"]
    vendor: VendorName
    max: Duration
    stable_for: Duration = 30.0


class NoCredentialRejected(_CheckBase):
    """No vendor refused any of the integration's credentials (`credential.rejected` journal events), at most
    `max`. Runbooks 000_030ea53f0735abf7.txt §1 and 002_437ee203264dfa64.txt §10.2 rotate by deploying the
    new credential before revoking the old one: done in that order, no credential is ever refused."""

    check: Literal["no_credential_rejected"]
    vendor: VendorName | None = None
    max: int = Field(default=0, ge=0)


Expectation = Annotated[
    BreakerOpens | BreakerHalfOpens | BreakerCloses | BreakerStaysClosed | SuccessRate | LatencyPercentile
    | RecoveryTime | NoCredentialRejected,
    Field(discriminator="check"),
]
