"""What `events.where` may compare: each event kind's fields, their types and their domains.

A `where` that can never match is a check that passes on nothing (`max: 0` over a typo), so every key and
value is checked when the scenario is loaded. The type of a field comes from its journal model (`str`,
`int | None`, `bool`, a `Literal`); a list or mapping field (`reasons`, `params`) cannot be compared with
one value and is refused. The domain of a field comes from the code that produces it, never a hand list
where the code has one:

- vendors: `harness.vendors.VENDORS`; where a field can also name a failover system (`request.vendor`,
  `token.*.vendor`, `failover.read.served_by` ...), `<vendor>_prod` (`harness.failover_layer`): the
  scenario checks that its `setup.failover` has that system;
- breaker names (`breaker.transition.breaker`): a vendor or `<vendor>_prod` here, the setup's breakers in
  `Scenario` (`harness.scenario.model`);
- breaker states: `integrations.events.BreakerState`; provider health: `HealthStatus`;
- HTTP statuses: one integer from 100 to 599 (or null: no response). Comparisons (`">=500"`) and strings
  are refused: a `where` is an equality;
- error class names: every subclass of `integrations.errors.IntegrationError` and of the lab's
  `WorkloadError`, found by walking the classes; an operation's error may also be `Cancelled` (drained at
  the end) or `Unexpected<Name>` (an untyped exception, `harness.runner`); token and credential errors
  may be an OAuth error code (RFC 6749 §5.2, RFC 6750 §3.1); job and queue errors any Python exception
  class name (a job handler's exception is journaled by its class);
- the enums of the sync pipeline (`integrations.sync.models`: purposes, data classes, audit event types
  and outcomes, record kinds), operations, fault kinds and step actions of the scenario format, and every
  `Literal` field of a journal model.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

WhereValue = str | int | float | bool | None
_PROD = "_prod"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: RFC 6749 §5.2 token endpoint errors and RFC 6750 §3.1 resource errors.
OAUTH_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "invalid_token", "insufficient_scope")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Domain:
    """The values a field can take: `accepts` says whether one is in it, `describe` says what is."""

    describe: str
    accepts: Callable[[Any], bool]


def _one_of(values: Iterable[str], what: str) -> Domain:
    allowed = tuple(values)
    shown = ", ".join(allowed) if len(allowed) <= 12 else ", ".join(allowed[:12]) + f" ... ({len(allowed)} in all)"
    return Domain(f"{what} ({shown})", lambda v: v in allowed)


# -- the domains, from the code -----------------------------------------------------------------------------

@cache
def typed_error_names() -> frozenset[str]:
    """Class names of every typed error the integration (and the lab's workload) raises at a caller."""
    import integrations.fhir
    import integrations.queue
    import integrations.queue.worker
    import integrations.resilience
    import integrations.service
    import integrations.sync
    import integrations.systems  # noqa: F401  (imported for their subclasses)
    from harness.workload.operations import WorkloadError
    from integrations.errors import IntegrationError

    names: set[str] = set()
    pending: list[type[BaseException]] = [IntegrationError, WorkloadError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return frozenset(names)


@cache
def _python_exception_names() -> frozenset[str]:
    return frozenset(n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException))


def is_unexpected(name: str) -> bool:
    """`Unexpected<Name>` as the runner journals an untyped exception (a typed class whose name happens to
    start with Unexpected, `UnexpectedStatus`, is not one)."""
    return name.startswith("Unexpected") and name not in typed_error_names()


def _errors(*, operation: bool = False, oauth: bool = False, python: bool = False) -> Domain:
    extra = []
    if operation:
        extra.append("Cancelled, Unexpected<Name>")
    if oauth:
        extra.append("an OAuth error code (" + ", ".join(OAUTH_ERRORS) + ")")
    if python:
        extra.append("a Python exception class name")

    def accepts(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if value in typed_error_names():
            return True
        if operation and (value == "Cancelled" or (value.startswith("Unexpected")
                                                  and _IDENTIFIER.match(value[len("Unexpected"):]))):
            return True
        return (oauth and value in OAUTH_ERRORS) or (python and value in _python_exception_names())

    known = ", ".join(sorted(typed_error_names()))
    return Domain("an error class name of the integration (" + known + ")" + (
        "; or " + "; or ".join(extra) if extra else ""), accepts)


def _vendors() -> tuple[str, ...]:
    from harness.vendors import VENDORS

    return tuple(sorted(VENDORS))


def _vendor(*, systems: bool) -> Domain:
    vendors = _vendors()
    if not systems:
        return _one_of(vendors, "a vendor")
    return Domain("a vendor (" + ", ".join(vendors) + ") or a failover system (" + ", ".join(
        v + _PROD for v in vendors) + ")", _vendor_or_system)


def _vendor_or_system(value: Any) -> bool:
    return value in _vendors() or (isinstance(value, str) and system_vendor(value) is not None)


def _systems() -> Domain:
    names = tuple(v + _PROD for v in _vendors())
    return _one_of(names, "a failover system of setup.failover")


def system_vendor(name: str) -> str | None:
    """The vendor of a failover system id (`epic_prod` -> epic), None for anything else."""
    vendor = name[:-len(_PROD)] if name.endswith(_PROD) else None
    return vendor if vendor in _vendors() else None


def _status() -> Domain:
    return Domain("one HTTP status code, an integer from 100 to 599, or null for no response (a where is an "
                  "equality: comparisons such as '>=500' are not supported; write one check per status)",
                  lambda v: isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599)


def _data_classes() -> Domain:
    from integrations.sync.models import DataClass

    known = tuple(d.value for d in DataClass)
    return Domain("data classes, comma-joined (" + ", ".join(known) + ")",
                  lambda v: isinstance(v, str) and all(part in known for part in v.split(",")))


def _enum_values(enum: Any) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def _literal_values(alias: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in get_args(alias))


def _union_tags(union: Any, tag: str) -> tuple[str, ...]:
    models = get_args(get_args(union)[0]) if get_origin(union) is not None and get_args(union) else ()
    return tuple(v for m in models for v in get_args(m.model_fields[tag].annotation))


def _error_domain(kind: str, family: str) -> Domain | None:
    """An `error` field: the integration's error classes, with what else each kind may carry (the lab's own
    `fault.error` / `step.error` carry a free description)."""
    if kind == "operation":
        return _errors(operation=True)
    if kind in ("token.failed", "credential.rejected"):
        return _errors(oauth=True)
    if family in ("job", "queue"):
        return _errors(python=True)
    if kind in ("fault.error", "step.error"):
        return None
    return _errors()


def _special(kind: str, field: str) -> Domain | None:
    """The domain of `field` in `kind` events where the code defines one (None: any value of the type)."""
    from integrations.events import BreakerState, HealthStatus

    family = kind.split(".")[0]
    if field == "vendor":
        return _vendor(systems=kind not in ("operation", "operation.dropped", "step.done", "step.error"))
    if field == "target":
        return _vendor(systems=False)
    if field in ("primary", "served_by", "system"):
        return _systems()
    if field == "breaker":
        return Domain("a breaker of the setup: a vendor (" + ", ".join(_vendors()) + ") or a failover system "
                      "(<vendor>_prod)", _vendor_or_system)
    if (field in ("from_state", "to_state") and kind == "breaker.transition") or field == "breaker_state":
        return _one_of(_enum_values(BreakerState), "a breaker state")
    if field in ("from_status", "to_status"):
        return _one_of(_enum_values(HealthStatus), "a provider health status")
    if field == "status" and kind == "consent.checked":
        from integrations.sync.models import ConsentStatus

        return _one_of(_literal_values(ConsentStatus), "a consent status")
    if field == "status":
        return _status()
    if field == "error":
        return _error_domain(kind, family)
    if field == "reason" and kind == "retry.scheduled":
        return _errors()
    if field == "reason" and kind in ("failover.read", "sync.system_failed"):
        return _errors() if kind == "failover.read" else Domain(
            "an error class name, not_found or ambiguous", lambda v: v in ("not_found", "ambiguous") or
            _errors().accepts(v))
    if field == "reason" and family == "token":
        return _one_of(("initial", "expiring", "rejected"), "a token reason")
    if field == "reason" and kind == "queue.removed":
        return _one_of(("retention", "clean"), "a removal reason")
    if field == "state" and kind == "queue.removed":
        return _one_of(("completed", "failed"), "a job state")
    if field == "method":
        return _one_of(HTTP_METHODS, "an HTTP method")
    if field == "operation" and kind in ("operation", "operation.dropped"):
        from harness.workload.operations import OPERATIONS

        return _one_of(tuple(sorted(OPERATIONS)), "a workload operation")
    if field == "fault" and family == "fault":
        from harness.faults.catalogue import FAULT_KINDS

        return _one_of(FAULT_KINDS, "a fault kind")
    if field == "action" and family == "step":
        from harness.steps.catalogue import Step

        return _one_of(_union_tags(Step, "action"), "a step action")
    if field == "resource" and family == "fhir_sync":
        from integrations.sync.models import RecordKind

        return _one_of(_enum_values(RecordKind), "a record kind")
    if field == "data_class":
        return _data_classes()
    if field == "purpose":
        from integrations.sync.models import Purpose

        return _one_of(_enum_values(Purpose), "a consent purpose")
    if field == "event_type":
        from integrations.sync.models import AuditEventType

        return _one_of(_enum_values(AuditEventType), "an audit event type")
    if field == "outcome" and kind == "audit.recorded":
        from integrations.sync.models import Outcome

        return _one_of(_literal_values(Outcome), "an audit outcome")
    if field == "scope" and kind == "flag.changed":
        return _one_of(("global", "user"), "a flag scope")
    if field == "mode" and kind == "scenario.start":
        return _one_of(("virtual", "real"), "a mode")
    return None


# -- types, from the journal models -------------------------------------------------------------------------

@cache
def _models() -> dict[str, type[BaseModel]]:
    from harness.journal.store import JournalEvent

    found: dict[str, type[BaseModel]] = {}
    for model in get_args(get_args(JournalEvent)[0]):
        for kind in get_args(model.model_fields["kind"].annotation):
            found[kind] = model
    return found


def _parts(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of a field's annotation and whether None is allowed."""
    members = list(get_args(annotation)) if get_origin(annotation) in (Union, UnionType) else [annotation]
    return [m for m in members if m is not NoneType], NoneType in members


def _type_of(value: WhereValue) -> str:
    return "null" if value is None else type(value).__name__


def field_problem(kind: str, field: str, value: WhereValue) -> str | None:
    """Why `where: {field: value}` can never match a `kind` event (None: it can)."""
    model = _models().get(kind)
    own = sorted(n for n in (model.model_fields if model is not None else {}) if n not in ("t", "kind", "wall"))
    if field not in own:
        return f"{kind} events have no field {field!r} (fields: {', '.join(own)})"
    assert model is not None
    members, nullable = _parts(model.model_fields[field].annotation)
    if value is None:
        return None if nullable else f"{kind}.{field} is never null"
    if any(get_origin(m) in (tuple, list, dict) or m in (tuple, list, dict) for m in members):
        return f"{kind}.{field} is a list or mapping: where compares one value, so it could never match"
    literal = [v for m in members if get_origin(m) is Literal for v in get_args(m)]
    if literal:
        return None if value in literal else (
            f"{value!r} is not a {kind}.{field} (one of: {', '.join(map(str, literal))})")
    if bool in members:
        ok = isinstance(value, bool)
    elif int in members and float not in members:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif float in members:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    domain = _special(kind, field)
    if not ok:
        wanted = domain.describe if domain is not None else "/".join(getattr(m, "__name__", str(m)) for m in members)
        return f"{kind}.{field} takes {wanted}, not {_type_of(value)} {value!r}"
    if domain is not None and not domain.accepts(value):
        return f"{value!r} is not {domain.describe}"
    return None


def where_problems(kind: str, where: dict[str, WhereValue]) -> list[str]:
    """Every reason the `where` of an `events` check on `kind` could never match, field by field."""
    return [f"where.{field}: {problem}" for field, value in sorted(where.items())
            if (problem := field_problem(kind, field, value)) is not None]
