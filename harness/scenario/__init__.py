"""Scenario files: the typed model and the loader."""

from harness.scenario.loader import load_scenario, scenario_files
from harness.scenario.model import Scenario, Setup, WorkloadStream

__all__ = ["Scenario", "Setup", "WorkloadStream", "load_scenario", "scenario_files"]
