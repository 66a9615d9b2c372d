"""Expectations checked against the scenario that states them: what only the whole file can tell.

- Breakers: a breaker check (and `breaker_transitions_legal`) with `breaker: <name>` must name one of the
  setup's breakers; with `vendor: <vendor>` it is resolved to that vendor's one breaker (the failover
  system's `<vendor>_prod` when the lab's own client of the vendor carries no traffic; both carrying
  traffic is ambiguous and refused with their names).
- Faults: `fault: <name>` and fault anchors (`"<name> end + 30s"`) must name a fault of the scenario, and
  one only: two faults with the same name cannot be told apart once one is referenced.
- `events.where`: breaker names, failover systems (`<vendor>_prod`) and fault names (`fault.*`'s `name`)
  must be the setup's.

`check_references` returns the expectations with breakers resolved and every problem with its location
(under `expectations[i]`), so the scenario reports them all at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.base import CheckBase, Loc
from harness.checks.event_domains import system_vendor
from harness.checks.invariant_models import Invariant
from harness.checks.models import BREAKER_CHECKS, EventCount

_SYSTEM_FIELDS = ("vendor", "primary", "served_by", "system")


@dataclass(frozen=True, slots=True)
class SetupFacts:
    """What the scenario's setup builds, as checks need to know it."""

    breakers: dict[str, str]  # journal name -> vendor
    busy: frozenset[str]  # vendors whose lab client carries traffic (its breaker `<vendor>` sees calls)
    systems: frozenset[str]  # failover system ids (`<vendor>_prod`)
    faults: tuple[str, ...]  # the faults' names, in file order (duplicates kept)

    def breakers_of(self, vendor: str) -> list[str]:
        """The breakers `vendor: <vendor>` stands for: see the module docstring."""
        found = [vendor] if vendor in self.busy else []
        found += [name for name, v in self.breakers.items() if v == vendor and name != vendor]
        return found or ([vendor] if vendor in self.breakers else [])


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    message: str


def _breaker_list(facts: SetupFacts) -> str:
    return ", ".join(sorted(facts.breakers)) or "none"


def _resolve_breaker(spec: Any, facts: SetupFacts) -> tuple[Any, list[Problem]]:
    if spec.breaker is not None:
        if spec.breaker not in facts.breakers:
            return spec, [Problem(("breaker",), f"no breaker {spec.breaker!r} in this setup (breakers: "
                                                f"{_breaker_list(facts)})")]
        return spec, []
    if spec.vendor is None:
        return spec, []
    candidates = facts.breakers_of(spec.vendor)
    if len(candidates) > 1:
        return spec, [Problem(("vendor",), f"vendor {spec.vendor} has {len(candidates)} breakers in this setup "
                                           f"({', '.join(candidates)}): name one with breaker: instead of vendor:")]
    if not candidates:
        return spec, [Problem(("vendor",), f"vendor {spec.vendor} has no breaker in this setup (breakers: "
                                           f"{_breaker_list(facts)})")]
    return spec.model_copy(update={"breaker": candidates[0]}), []


def _faults(spec: CheckBase, facts: SetupFacts) -> list[Problem]:
    problems = []
    for loc, name in spec.fault_references():
        count = facts.faults.count(name)
        if count == 0:
            known = ", ".join(dict.fromkeys(facts.faults)) or "the scenario has none"
            problems.append(Problem(loc, f"no fault named {name!r} (faults: {known})"))
        elif count > 1:
            problems.append(Problem(loc, f"{count} faults are named {name!r}: give each a distinct name: to "
                                         "refer to one"))
    return problems


def _where(spec: EventCount, facts: SetupFacts) -> list[Problem]:
    problems = []
    for field, value in sorted(spec.where.items()):
        loc: Loc = ("where", field)
        if not isinstance(value, str):
            continue
        if field == "breaker" and value not in facts.breakers:
            problems.append(Problem(loc, f"no breaker {value!r} in this setup (breakers: {_breaker_list(facts)})"))
        elif field in _SYSTEM_FIELDS and system_vendor(value) is not None and value not in facts.systems:
            systems = ", ".join(sorted(facts.systems)) or "none: no setup.failover"
            problems.append(Problem(loc, f"no failover system {value!r} in this setup (systems: {systems})"))
        elif field == "name" and spec.kind.startswith("fault.") and value not in facts.faults:
            known = ", ".join(dict.fromkeys(facts.faults)) or "the scenario has none"
            problems.append(Problem(loc, f"no fault named {value!r} (faults: {known})"))
    return problems


def check_references(expectations: Sequence[Any], facts: SetupFacts) -> tuple[list[Any], list[Problem]]:
    """The expectations with `vendor:` breakers resolved, and every problem at `("expectations", i, ...)`."""
    resolved: list[Any] = []
    problems: list[Problem] = []
    for i, spec in enumerate(expectations):
        found: list[Problem] = []
        if isinstance(spec, BREAKER_CHECKS) or (isinstance(spec, Invariant)
                                                and spec.invariant == "breaker_transitions_legal"):
            spec, found = _resolve_breaker(spec, facts)
        found += _faults(spec, facts)
        if isinstance(spec, EventCount):
            found += _where(spec, facts)
        problems += [Problem(("expectations", i, *p.loc), p.message) for p in found]
        resolved.append(spec)
    return resolved, problems
