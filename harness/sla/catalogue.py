"""The SLA catalogue as typed models: every threshold of the runbooks as data, each with its citation.

Four kinds of entries (`scenarios/slas.yaml` documents the ids):

- `bands`: a series judged healthy / warning / critical (runbook 000 §7's dashboard bands, 002 §7.1's
  healthy state). `healthy` and `critical` are thresholds; whatever meets neither is `warning`.
- `state_bands`: the same for a series of states (000 §7 "Circuit State": CLOSED / HALF_OPEN / OPEN).
- `rules`: alert rules in the manner of Prometheus (002 §8.4): a series, a threshold, a range `window`
  for series computed over events, and `for` (the condition must hold at every evaluation for that long
  before the alert fires). A rule the journal cannot observe (a process's `up`, memory) keeps its
  runbook text and says why in `unobservable`; a scenario cannot expect it.
- `settings`: numbers the integration is configured with (backoff, token margin, queue settings) or a
  procedure takes (staged recovery soak times), kept here so code and scenarios cite one place.

`severity_profiles` hold runbook 001's P0–P3 scheme with its classification flow and 003's P1–P4.
Citations are `<runbook file> §<section>`; a test checks every cited file exists.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from harness.durations import Duration
from harness.sla.conditions import Condition, Unit, parse_condition
from harness.sla.series import SERIES, SeriesSpec

_CITATION = re.compile(r"^(?P<file>\d{3}_[0-9a-f]{16}\.txt) §\S.*$")
_ID = r"^[0-9]{3}-[0-9a-z.]+(-[0-9a-z]+)+$"
Band = Literal["healthy", "warning", "critical"]
BAND_ORDER: dict[Band, int] = {"healthy": 0, "warning": 1, "critical": 2}


def _citation(text: str) -> str:
    if not _CITATION.match(text):
        raise ValueError(f"citation {text!r} must be '<runbook file> §<section>', "
                         "e.g. '002_437ee203264dfa64.txt §8.4'")
    return text


Citation = Annotated[str, AfterValidator(_citation)]
EntryId = Annotated[str, Field(pattern=_ID, max_length=60)]


def cited_file(citation: str) -> str:
    match = _CITATION.match(citation)
    assert match is not None  # validated on load
    return match.group("file")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EntryId
    title: str
    source: list[Citation] = Field(min_length=1)
    note: str | None = None

    def citation(self) -> str:
        return "; ".join(self.source)


def _series(name: str, shapes: tuple[str, ...]) -> SeriesSpec:
    spec = SERIES.get(name)
    if spec is None:
        raise ValueError(f"unknown series {name!r} (known: {', '.join(sorted(SERIES))})")
    if spec.shape not in shapes:
        raise ValueError(f"series {name!r} is a {spec.shape}; this entry needs a {' or '.join(shapes)}")
    return spec


def _threshold(value: str | None, info: ValidationInfo) -> str | None:
    """A threshold in the unit of the entry's series (already validated: it is in `info.data`)."""
    series = info.data.get("series")
    if value is not None and series in SERIES:
        parse_condition(value, SERIES[series].unit_numeric())
    return value


class NumericBand(_Entry):
    series: str
    healthy: str
    critical: str | None = None

    @field_validator("series")
    @classmethod
    def _known(cls, value: str) -> str:
        _series(value, ("window", "gauge", "measure"))
        return value

    _thresholds = field_validator("healthy", "critical")(_threshold)

    @property
    def unit(self) -> Unit:
        return SERIES[self.series].unit_numeric()

    @property
    def healthy_condition(self) -> Condition:
        return parse_condition(self.healthy, self.unit)

    @property
    def critical_condition(self) -> Condition | None:
        return None if self.critical is None else parse_condition(self.critical, self.unit)

    def band(self, value: float) -> Band:
        if self.healthy_condition.holds(value):
            return "healthy"
        critical = self.critical_condition
        if critical is not None and critical.holds(value):
            return "critical"
        return "warning"

    def describe(self) -> str:
        text = f"healthy {self.healthy}"
        return text + (f", critical {self.critical}" if self.critical else ", otherwise warning")


class StateBand(_Entry):
    series: str
    healthy: list[str] = Field(min_length=1)
    warning: list[str] = Field(default_factory=list)
    critical: list[str] = Field(default_factory=list)

    @field_validator("series")
    @classmethod
    def _known(cls, value: str) -> str:
        _series(value, ("state",))
        return value

    @model_validator(mode="after")
    def _check(self) -> StateBand:
        seen = self.healthy + self.warning + self.critical
        if len(seen) != len(set(seen)):
            raise ValueError("a state may be in one band only")
        return self

    def band(self, state: str) -> Band:
        if state in self.healthy:
            return "healthy"
        if state in self.warning:
            return "warning"
        return "critical"  # a state the runbook does not list is not healthy

    def describe(self) -> str:
        parts = [f"healthy {'/'.join(self.healthy)}"]
        if self.warning:
            parts.append(f"warning {'/'.join(self.warning)}")
        if self.critical:
            parts.append(f"critical {'/'.join(self.critical)}")
        return ", ".join(parts)


class Rule(_Entry):
    severity: Literal["P1", "P2", "P3", "P4"]
    expr: str | None = Field(default=None, description="the runbook's own wording or PromQL, for reference")
    series: str | None = None
    when: str | None = None
    window: Duration = Field(default=60.0, gt=0, description="range of a series computed over events")
    for_: Duration = Field(default=0.0, alias="for")
    unobservable: str | None = Field(default=None, description="why the journal cannot show this rule")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("series")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None:
            _series(value, ("window", "gauge"))
        return value

    _when = field_validator("when")(_threshold)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.unobservable is not None:
            if self.series is not None or self.when is not None:
                raise ValueError("an unobservable rule has no series or when")
            return self
        if self.series is None or self.when is None:
            raise ValueError("a rule needs series and when (or unobservable: why the journal cannot show it)")
        return self

    @property
    def observable(self) -> bool:
        return self.unobservable is None

    @property
    def condition(self) -> Condition:
        assert self.series is not None
        assert self.when is not None
        return parse_condition(self.when, SERIES[self.series].unit_numeric())


class Setting(_Entry):
    unit: Unit
    value: str

    @field_validator("value")
    @classmethod
    def _in_unit(cls, value: str, info: ValidationInfo) -> str:
        unit = info.data.get("unit")
        if unit is not None:
            parse_condition(f"== {value}", unit)
        return value

    @property
    def quantity(self) -> float:
        """The value in its unit's base (ratios as fractions, `ms` in ms, `s` in seconds, rates per minute)."""
        return parse_condition(f"== {self.value}", self.unit).value


class SeverityLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: str = Field(pattern=r"^P[0-9]$")
    name: str
    impact: str
    response: Duration
    updates: str | None = None
    examples: list[str] = Field(default_factory=list)
    equivalent: str | None = Field(default=None, description="the level of the other profile it matches")


Answer = Literal["yes", "partial", "no"]


class FlowStep(BaseModel):
    """One path through a classification flowchart: the answers that lead to `severity`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    services_available: Answer
    core_features: Answer | None = None
    severity: str


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after: Duration
    to: str


class SeverityProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9]{3}$")
    title: str
    source: list[Citation] = Field(min_length=1)
    levels: list[SeverityLevel] = Field(min_length=1)
    flow: list[FlowStep] = Field(default_factory=list)
    escalation: list[Escalation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SeverityProfile:
        names = [level.level for level in self.levels]
        if len(names) != len(set(names)):
            raise ValueError("levels must be unique")
        for step in self.flow:
            if step.severity not in names:
                raise ValueError(f"flow leads to {step.severity!r}, not a level of this profile")
        return self

    def classify(self, services_available: Answer, core_features: Answer | None = None) -> SeverityLevel | None:
        """The level the flow gives for these answers; None where the flowchart has no edge."""
        for step in self.flow:
            if step.services_available != services_available:
                continue
            if step.core_features is not None and step.core_features != core_features:
                continue
            return next(level for level in self.levels if level.level == step.severity)
        return None


class Evaluation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration = Field(gt=0, description="how often rules are evaluated (Prometheus' scrape interval)")
    source: list[Citation] = Field(min_length=1)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    evaluation: Evaluation
    bands: list[NumericBand] = Field(default_factory=list)
    state_bands: list[StateBand] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    settings: list[Setting] = Field(default_factory=list)
    severity_profiles: list[SeverityProfile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        seen: set[str] = set()
        for entry in self.entries():
            if entry.id in seen:
                raise ValueError(f"id {entry.id!r} is used twice")
            seen.add(entry.id)
        return self

    def entries(self) -> list[_Entry]:
        return [*self.bands, *self.state_bands, *self.rules, *self.settings]

    def band(self, sla_id: str) -> NumericBand | StateBand | None:
        bands: list[NumericBand | StateBand] = [*self.bands, *self.state_bands]
        return next((b for b in bands if b.id == sla_id), None)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def setting(self, setting_id: str) -> Setting | None:
        return next((s for s in self.settings if s.id == setting_id), None)

    def profile(self, profile_id: str) -> SeverityProfile | None:
        return next((p for p in self.severity_profiles if p.id == profile_id), None)

    def citations(self) -> list[str]:
        found = [c for entry in self.entries() for c in entry.source]
        found += [c for profile in self.severity_profiles for c in profile.source]
        return found + list(self.evaluation.source)
