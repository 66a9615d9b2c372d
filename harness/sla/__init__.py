"""The runbooks' SLA catalogue (`scenarios/slas.yaml`) and its evaluation over a journal.

Modules: `conditions` (thresholds with units), `series` (the series' names and shapes), `catalogue`
(typed models), `loader` (file -> `Catalogue`, errors naming file, line and field), `queue_state` (the job
queue rebuilt from job events), `data` (series over one journal), `evaluate` (bands; Prometheus-style
rules with `for`). The checks that expose them to scenarios are in `harness.checks.sla_rules`.
"""

from harness.sla.catalogue import Catalogue, NumericBand, Rule, Setting, SeverityProfile, StateBand
from harness.sla.loader import DEFAULT_PATH, CatalogueError, default_catalogue, load_catalogue

__all__ = [
    "DEFAULT_PATH",
    "Catalogue",
    "CatalogueError",
    "NumericBand",
    "Rule",
    "Setting",
    "SeverityProfile",
    "StateBand",
    "default_catalogue",
    "load_catalogue",
]
