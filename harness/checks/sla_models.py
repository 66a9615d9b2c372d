"""Expectations over the SLA catalogue (`scenarios/slas.yaml`, `harness.sla`): a band's verdict and an
alert rule's firing. Ids are checked against the catalogue when the scenario is loaded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

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
    """The catalogue band `sla` over `scope` of the run is no worse than `worst` (default healthy)."""

    check: Literal["sla_band"]
    sla: Annotated[str, AfterValidator(_band_id)]
    vendor: VendorName | None = None
    scope: Literal["all", "steady", "faults"] = "all"
    grace: Duration = Field(default=0.0, description="fault windows extended by this much (steady, faults)")
    worst: Literal["healthy", "warning", "critical"] = "healthy"
    after: Duration | None = Field(default=None, description="judge only from this scenario time on (after a "
                                                             "procedure: the state it must leave behind)")

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
    `within` after the first fault starts (the run's start without faults), `for` included."""

    check: Literal["alert_rule"]
    rule: Annotated[str, AfterValidator(_rule_id)]
    fires: bool = False
    within: Duration | None = None
    vendor: VendorName | None = None
    scope: Literal["all", "steady"] = Field(
        default="all", description="steady: the condition is not counted inside fault windows (+ grace)")
    grace: Duration = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        if self.within is not None and not self.fires:
            raise ValueError("within applies only with fires: true")
        series = _series_of(self.rule, "rule")
        if self.vendor is not None and series is not None and not SERIES[series].vendor_scoped:
            raise ValueError(f"alert rule {self.rule!r} ({series}) is not per vendor: remove vendor")
        return self

    def default_name(self) -> str:
        return f"alert_rule[{self.rule}" + (f",{self.vendor}]" if self.vendor else "]")
