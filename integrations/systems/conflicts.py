"""Field-by-field comparison of one patient's records from several systems (runbook
`004_bc3882054056792c.txt`, "Multi-System Synchronization": "Conflicts detected"; "Troubleshooting",
"Data Conflicts").

Each `FieldRule` names a field path and extracts a normalised string from a Patient body, or None when
the record has no value there. Normalising keeps formatting out of the verdict: case and runs of
white space do not count, a phone number is its digits, a set (telecom) is compared sorted. Which
entry of a repeating element is compared: the `official` name (else the first), the `home` address
(else the first). `PATIENT_FIELDS` covers name, birthDate, gender, telecom and address.

A field conflicts when the systems' normalised values are not all equal; `kind` is `missing` when some
systems have no value and others do, `differs` otherwise. The values stay in the `FieldConflict`
returned to the caller (who may need them to resolve the conflict), but never in its repr or its
`redacted()` summary: those show a keyed hash per system (HMAC-SHA256 with a per-comparison salt,
12 hex digits), so equal values can be told apart from different ones without revealing either. The
salt matters: an unkeyed hash of a birth date is reversed by trying the 40,000 dates of a century.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from integrations.fhir import JsonObject, JsonValue

_SPACES = re.compile(r"\s+")


def _text(value: JsonValue) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = _SPACES.sub(" ", value).strip().casefold()
    return cleaned or None


def _pick(body: JsonObject, element: str, use: str) -> dict[str, JsonValue] | None:
    """The entry of a repeating element with `use`, else the first entry; None if there is none."""
    raw = body.get(element)
    entries = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    for entry in entries:
        if entry.get("use") == use:
            return entry
    return entries[0] if entries else None


def _name_part(part: str) -> Callable[[JsonObject], str | None]:
    def extract(body: JsonObject) -> str | None:
        name = _pick(body, "name", "official")
        if name is None:
            return None
        value = name.get(part)
        if isinstance(value, list):
            return _text(" ".join(v for v in value if isinstance(v, str)))
        return _text(value)

    return extract


def _address_part(part: str) -> Callable[[JsonObject], str | None]:
    def extract(body: JsonObject) -> str | None:
        address = _pick(body, "address", "home")
        if address is None:
            return None
        value = address.get(part)
        if isinstance(value, list):
            return _text(", ".join(v for v in value if isinstance(v, str)))
        return _text(value)

    return extract


def _telecom(system: str, normalise: Callable[[str], str]) -> Callable[[JsonObject], str | None]:
    def extract(body: JsonObject) -> str | None:
        telecom = body.get("telecom")
        values: set[str] = set()
        for entry in telecom if isinstance(telecom, list) else []:
            value = entry.get("value") if isinstance(entry, dict) and entry.get("system") == system else None
            if isinstance(value, str) and normalise(value):
                values.add(normalise(value))
        return "; ".join(sorted(values)) or None

    return extract


def _scalar(element: str) -> Callable[[JsonObject], str | None]:
    return lambda body: _text(body.get(element))


@dataclass(frozen=True, slots=True)
class FieldRule:
    path: str
    extract: Callable[[JsonObject], str | None]


PATIENT_FIELDS: tuple[FieldRule, ...] = (
    FieldRule("name.family", _name_part("family")),
    FieldRule("name.given", _name_part("given")),
    FieldRule("birthDate", _scalar("birthDate")),
    FieldRule("gender", _scalar("gender")),
    FieldRule("telecom.phone", _telecom("phone", lambda v: re.sub(r"\D", "", v))),
    FieldRule("telecom.email", _telecom("email", lambda v: v.strip().casefold())),
    FieldRule("address.line", _address_part("line")),
    FieldRule("address.city", _address_part("city")),
    FieldRule("address.state", _address_part("state")),
    FieldRule("address.postalCode", _address_part("postalCode")),
    FieldRule("address.country", _address_part("country")),
)


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One system's normalised value of a field (None: no value), and its keyed digest."""

    system_id: str
    value: str | None  # PHI: for the caller only; never in a repr, a log line or an event
    digest: str | None

    def __repr__(self) -> str:
        return f"FieldValue(system_id={self.system_id!r}, digest={self.digest!r})"


@dataclass(frozen=True, slots=True)
class FieldConflict:
    field: str
    kind: Literal["differs", "missing"]
    values: tuple[FieldValue, ...]  # one per compared system, in the sync's system order

    def __repr__(self) -> str:
        return f"FieldConflict({self.redacted()})"

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(v.system_id for v in self.values)

    def redacted(self) -> str:
        """`birthDate differs: epic=#1f0c…, cerner=#a93b…`: no value, only digests (or `absent`)."""
        shown = ", ".join(f"{v.system_id}={'#' + v.digest if v.digest else 'absent'}" for v in self.values)
        return f"{self.field} {self.kind}: {shown}"


def compare(records: Sequence[tuple[str, JsonObject]], *, salt: bytes,
            rules: Sequence[FieldRule] = PATIENT_FIELDS) -> tuple[FieldConflict, ...]:
    """The fields on which `records` ((system id, Patient body), at least two to compare) disagree."""
    if len(records) < 2:
        return ()
    conflicts: list[FieldConflict] = []
    for rule in rules:
        values = tuple(FieldValue(system_id=system, value=(value := rule.extract(body)),
                                  digest=None if value is None else _digest(salt, rule.path, value))
                       for system, body in records)
        distinct = {v.value for v in values}
        if len(distinct) > 1:
            conflicts.append(FieldConflict(field=rule.path, kind="missing" if None in distinct else "differs",
                                           values=values))
    return tuple(conflicts)


def _digest(salt: bytes, path: str, value: str) -> str:
    return hmac.new(salt, f"{path}\x00{value}".encode(), hashlib.sha256).hexdigest()[:12]
