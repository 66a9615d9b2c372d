"""Pair a run's summary with its journal, scenario by scenario, for the derived reports (html, Allure,
incident): the journal is the source of truth, the summary holds the check results."""

from __future__ import annotations

from collections.abc import Sequence

from harness.journal import Event
from harness.report.incident import ScenarioIncident
from harness.report.models import RunSummary
from harness.report.series import derive, split_scenarios


class ReportInputError(ValueError):
    """summary.json and journal.jsonl do not describe the same run."""


def scenario_items(summary: RunSummary, events: Sequence[Event]) -> list[ScenarioIncident]:
    journals = split_scenarios(events)
    names = [j.name for j in journals]
    expected = [s.name for s in summary.scenarios]
    if names != expected:
        raise ReportInputError(f"journal.jsonl has scenarios {names or 'none'}, summary.json has {expected}")
    return [ScenarioIncident(summary=s, series=derive(j), events=j.events)
            for s, j in zip(summary.scenarios, journals, strict=True)]
