"""Expectations over the SLA catalogue (`scenarios/slas.yaml`, `harness.sla`): a band's verdict and an
alert rule's firing. Ids are checked against the catalogue when the scenario is loaded.

Background faults (`background: true`) are conditions, not incidents: the `steady` and `faults` scopes and
an alert's "first fault" leave them out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from harness.checks.anchors import FaultName, TimePoint
from harness.checks.base import CheckBase
from harness.durations import Duration
from harness.names import VendorName
from harness.sla.series import SERIES


def _band_id(value: str) -> str:
    from harness.sla import default_catalogue

    catalogue = default_catalogue()
    if catalogue.band(value) is None:
        known = ", ".join(b.id for b in [*catalogue.bands, *catalogue.state_bands])
        raise ValueError(f"unknown SLA band {value!r} (known: {known})")
    return value


def _rule_id(value: str) -> str:
    from harness.sla import default_catalogue

    rule = default_catalogue().rule(value)
    if rule is None:
        known = ", ".join(r.id for r in default_catalogue().rules if r.observable)
        raise ValueError(f"unknown alert rule {value!r} (known: {known})")
    if rule.unobservable is not None:
        raise ValueError(f"alert rule {value!r} cannot be evaluated over the journal: {rule.unobservable}")
    return value


def _series_of(entry_id: str, kind: Literal["band", "rule"]) -> str | None:
    from harness.sla import default_catalogue

    catalogue = default_catalogue()
    entry = catalogue.band(entry_id) if kind == "band" else catalogue.rule(entry_id)
    return None if entry is None else entry.series


class SlaBand(CheckBase):
    """The catalogue band `sla` over `scope` of the run is no worse than `worst` (default healthy). Matched: the
    samples judged (a window series: the events in scope; a gauge or state: the instants evaluated; a
    measure: its occurrences). Matched nothing: no data for the series in scope (for a breaker state: no
    transition of, and no call through, the vendor's breaker)."""

    check: Literal["sla_band"]
    sla: Annotated[str, AfterValidator(_band_id)]
    vendor: VendorName | None = None
    scope: Literal["all", "steady", "faults"] = "all"
    grace: Duration = Field(default=0.0, description="fault windows extended by this much (steady, faults)")
    worst: Literal["healthy", "warning", "critical"] = "healthy"
    after: TimePoint | None = Field(default=None, description=(
        "judge only from this scenario time (or fault anchor, `outage@epic end + 30s`) on: after a procedure, the "
        "state it must leave behind"))

    @model_validator(mode="after")
    def _vendor_applies(self) -> SlaBand:
        if self.after is not None and self.scope == "faults":
            raise ValueError("after applies to scope all or steady, not faults")
        series = _series_of(self.sla, "band")
        if self.vendor is not None and series is not None and not SERIES[series].vendor_scoped:
            raise ValueError(f"SLA band {self.sla!r} ({series}) is not per vendor: remove vendor")
        return self

    def default_name(self) -> str:
        return f"sla_band[{self.sla}" + (f",{self.vendor}]" if self.vendor else "]")


class AlertRule(CheckBase):
    """The catalogue's alert rule `rule` never fires (`fires: false`), or fires (`fires: true`) no later than
    `within` after the first fault starts (background conditions aside; the run's start without faults), or
    the fault named by `fault` starts, `for` included. Matched: the journal events that feed the rule's
    series. Matched nothing: none (a rule over a vendor never called cannot fire, nor be silent for cause)."""

    check: Literal["alert_rule"]
    rule: Annotated[str, AfterValidator(_rule_id)]
    fires: bool = False
    within: Duration | None = None
    vendor: VendorName | None = None
    scope: Literal["all", "steady"] = Field(
        default="all", description="steady: the condition is not counted inside fault windows (+ grace)")
    grace: Duration = 0.0
    fault: FaultName | None = Field(default=None, description="fires: true: time `within` from this fault's start")

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        if self.within is not None and not self.fires:
            raise ValueError("within applies only with fires: true")
        if self.fault is not None and not self.fires:
            raise ValueError("fault applies only with fires: true (it is where `within` counts from)")
        series = _series_of(self.rule, "rule")
        if self.vendor is not None and series is not None and not SERIES[series].vendor_scoped:
            raise ValueError(f"alert rule {self.rule!r} ({series}) is not per vendor: remove vendor")
        return self

    def default_name(self) -> str:
        return f"alert_rule[{self.rule}" + (f",{self.vendor}]" if self.vendor else "]")
