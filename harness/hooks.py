"""Observe a run without coupling to the runner: every method is a no-op by default
(the chaostoolkit `RunEventHandler` / locust `EventHook` shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.journal import Event

if TYPE_CHECKING:
    from harness.runner import ScenarioRun
    from harness.scenario.model import Scenario


class RunHooks:
    def scenario_started(self, scenario: Scenario, mode: str, seed: int) -> None:
        """The lab is up and the timeline is about to start."""

    def event(self, event: Event) -> None:
        """A journal event was recorded (live, in scenario-time order)."""

    def scenario_finished(self, run: ScenarioRun) -> None:
        """Checks are evaluated."""
