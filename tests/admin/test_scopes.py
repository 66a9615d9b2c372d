"""SMART v1/v2 scope matching (reference/vendors.md §5, "Scopes")."""

from __future__ import annotations

import pytest

from simulators.admin.clients import SmartScope, interaction_letter, narrow_scopes, parse_scope, scope_allows


@pytest.mark.parametrize(("scope", "expected"), [
    ("system/Patient.read", SmartScope("system", "Patient", frozenset("rs"))),
    ("system/Patient.write", SmartScope("system", "Patient", frozenset("cud"))),
    ("user/*.*", SmartScope("user", "*", frozenset("cruds"))),
    ("patient/Observation.rs", SmartScope("patient", "Observation", frozenset("rs"))),
    ("system/*.cruds", SmartScope("system", "*", frozenset("cruds"))),
    ("patient/Observation.rs?category=laboratory",
     SmartScope("patient", "Observation", frozenset("rs"), "category=laboratory")),
    ("system/Patient.sr", None),  # out of order
    ("system/Patient.rrs", None),  # repeated
    ("system/Patient.x", None),
    ("system/Patient.", None),
    ("system/Patient.read?x=1", None),  # v1 takes no query
    ("admin/Patient.read", None),
    ("system/patient.read", None),
    ("openid", None),
    ("launch/patient", None),
    ("system/Patient.r*", None),
])
def test_parse_scope(scope: str, expected: SmartScope | None) -> None:
    assert parse_scope(scope) == expected


@pytest.mark.parametrize(("scopes", "resource_type", "interaction", "allowed"), [
    (["system/Patient.read"], "Patient", "r", True),
    (["system/Patient.read"], "Patient", "s", True),
    (["system/Patient.read"], "Patient", "search", True),
    (["system/Patient.read"], "Patient", "vread", True),
    (["system/Patient.read"], "Patient", "c", False),
    (["system/Patient.read"], "Observation", "r", False),
    (["system/Patient.write"], "Patient", "u", True),
    (["system/Patient.write"], "Patient", "patch", True),
    (["system/Patient.write"], "Patient", "delete", True),
    (["system/Patient.write"], "Patient", "r", False),
    (["system/*.rs"], "Encounter", "s", True),
    (["system/*.rs"], "Encounter", "create", False),
    (["system/*.*"], "Encounter", "d", True),
    (["user/Patient.c"], "Patient", "c", True),
    (["patient/Observation.rs?category=laboratory"], "Observation", "r", True),
    (["system/Patient.sr"], "Patient", "r", False),
    (["openid", "system/Patient.rs"], "Patient", "r", True),
    ([], "Patient", "r", False),
])
def test_scope_allows(scopes: list[str], resource_type: str, interaction: str, allowed: bool) -> None:
    assert scope_allows(scopes, resource_type, interaction) is allowed


def test_contexts_restrict_which_scopes_count() -> None:
    assert not scope_allows(["patient/Patient.rs"], "Patient", "r", contexts=("system",))
    assert scope_allows(["system/Patient.rs"], "Patient", "r", contexts=("system",))


def test_unknown_interaction_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown interaction"):
        interaction_letter("operation")
    with pytest.raises(ValueError, match="unknown interaction"):
        scope_allows(["system/*.cruds"], "Patient", "x")


@pytest.mark.parametrize(("requested", "allowed", "granted"), [
    (["system/Patient.read"], ["system/*.cruds"], ["system/Patient.read"]),
    (["system/Patient.write"], ["system/*.rs"], []),
    (["system/Patient.rs", "system/Observation.rs"], ["system/Patient.read"], ["system/Patient.rs"]),
    (["system/Patient.rs", "system/Patient.rs"], ["system/*.*"], ["system/Patient.rs"]),
    (["user/Patient.rs"], ["system/*.cruds"], []),
    (["openid", "system/Patient.r"], ["system/Patient.read"], ["system/Patient.r"]),
    (["patient/Observation.rs?category=vital-signs"], ["patient/Observation.rs?category=laboratory"], []),
    (["patient/Observation.rs?category=vital-signs"], ["patient/Observation.rs"],
     ["patient/Observation.rs?category=vital-signs"]),
])
def test_narrow_scopes(requested: list[str], allowed: list[str], granted: list[str]) -> None:
    assert narrow_scopes(requested, allowed) == granted
