"""FHIR search: the parameters integrations use, parsed once into a `SearchQuery` that filters and sorts.

Supported (FHIR R4 §3.1.1 "Search"): the parameters of `simulators.fhir.search_params` (`_id`,
`_lastUpdated`, `identifier`, `patient`/`subject`, `code`, `date`, `status`, ... per type), and the
result parameters `_count`, `_sort` (comma list, `-` for descending), `_summary=count`, `_elements`,
  `_offset` / `_page` (paging, read by `simulators.fhir.paging`), `_total`, `_format`, `_pretty`.

Semantics: a comma is OR, a repeated parameter is AND. Tokens take `code`, `system|code`, `|code` and
`system|` over code, Coding, CodeableConcept, Identifier and boolean elements (modifiers `:not`,
`:text`, `:missing`). References take `id`, `Type/id` or an absolute URL ending in `Type/id`
(modifiers `:Type`, `:missing`). Strings match case-insensitively at the start (`:exact`, `:contains`).
Dates are ranges at their precision, compared with the prefixes eq ne lt gt le ge sa eb per the spec's
range rules (a value without a zone is UTC). Values are only ever compared as data, so injection-looking
values simply match nothing.

An unknown parameter is ignored or an error per personality (`unknown_search_param`); ignored
parameters are left out of the Bundle's `self` link, as the spec asks. A bad value, prefix or modifier
is always a `SearchError` (400).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from simulators.errors import SimulatorError
from simulators.fhir.dates import MAX_TIME, MIN_TIME, Range, date_range
from simulators.fhir.search_params import Kind, Param, search_params

__all__ = ["Filter", "Param", "SearchError", "SearchQuery", "date_range", "parse_query", "search_params",
           "values_at"]

PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")
#: Result and control parameters: never filters.
RESULT_PARAMS = frozenset({"_count", "_sort", "_summary", "_elements", "_offset", "_page", "_total",
                           "_format", "_pretty"})
#: Longest value accepted for one parameter (a longer one is refused, not scanned).
MAX_VALUE_LENGTH = 2048


class SearchError(SimulatorError):
    """A search request the server refuses (400): bad value, prefix, modifier or unknown parameter."""


# -- values --------------------------------------------------------------------------------------

def _element_range(value: object) -> Range | None:
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, Mapping) and ("start" in value or "end" in value):
        start = date_range(str(value["start"])) if "start" in value else None
        end = date_range(str(value["end"])) if "end" in value else None
        return (start[0] if start else MIN_TIME), (end[1] if end else MAX_TIME)
    return None


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def values_at(resource: Mapping[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path, flattening lists on the way."""
    current: list[Any] = [resource]
    for part in path.split("."):
        found: list[Any] = []
        for item in current:
            if isinstance(item, Mapping) and part in item:
                value = item[part]
                found.extend(value if isinstance(value, list) else [value])
        current = found
    return current


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):  # HumanName, Address and the like: every string part
        found: list[str] = []
        for key in ("text", "family", "given", "prefix", "suffix", "line", "city", "name"):
            part = value.get(key)
            for item in part if isinstance(part, list) else [part]:
                found.extend(_strings(item))
        return found
    return []


def _codes(value: object) -> list[tuple[str | None, str, str]]:
    """(system, code, text) triples of a code, boolean, Coding, CodeableConcept or Identifier."""
    if isinstance(value, bool):
        return [(None, "true" if value else "false", "")]
    if isinstance(value, str):
        return [(None, value, "")]
    if not isinstance(value, Mapping):
        return []
    if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
        codings = [c for c in value.get("coding") or [] if isinstance(c, Mapping)]
        text = str(value.get("text", ""))
        return [(c.get("system"), str(c.get("code", "")), f"{text} {c.get('display', '')}") for c in codings] or \
            [(None, "", text)]
    if "value" in value:  # Identifier, ContactPoint
        return [(value.get("system"), str(value["value"]), str((value.get("type") or {}).get("text", "")))]
    return [(value.get("system"), str(value.get("code", "")), str(value.get("display", "")))]


# -- filters -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Filter:
    """One parameter occurrence: matches when any of its comma-separated values matches (OR)."""

    name: str
    param: Param
    modifier: str | None
    values: tuple[Any, ...]

    def matches(self, resource: Mapping[str, Any]) -> bool:
        elements = [v for path in self.param.paths for v in values_at(resource, path)]
        if self.modifier == "missing":
            return all((not elements) == wanted for wanted in self.values)
        if self.modifier == "not":
            return not any(_token_match(value, elements, text=False) for value in self.values)
        return any(self._one(value, elements) for value in self.values)

    def _one(self, value: Any, elements: list[Any]) -> bool:
        kind = self.param.kind
        if kind == "token":
            return _token_match(value, elements, text=self.modifier == "text")
        if kind == "reference":
            return any(_reference_match(value, element) for element in elements)
        if kind == "string":
            wanted = _fold(value)
            texts = [_fold(s) for element in elements for s in _strings(element)]
            if self.modifier == "exact":
                return value in [s for element in elements for s in _strings(element)]
            if self.modifier == "contains":
                return any(wanted in text for text in texts)
            return any(text.startswith(wanted) for text in texts)
        prefix, search = value
        return any(_date_match(prefix, search, r) for r in map(_element_range, elements) if r is not None)


def _token_match(value: tuple[str | None, str], elements: list[Any], *, text: bool) -> bool:
    system, code = value
    for element in elements:
        for e_system, e_code, e_text in _codes(element):
            if text:
                if _fold(code) in _fold(e_text):
                    return True
            elif (system is None or system == (e_system or "")) and (code == "" or code == e_code):
                return True
    return False


def _reference_match(value: tuple[str | None, str], element: object) -> bool:
    if not isinstance(element, Mapping) or not isinstance(element.get("reference"), str):
        return False
    wanted_type, wanted_id = value
    parts = element["reference"].split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2:
        return False
    return parts[-1] == wanted_id and (wanted_type is None or parts[-2] == wanted_type)


def _date_match(prefix: str, search: Range, target: Range) -> bool:
    (b1, b2), (a1, a2) = search, target
    if prefix in ("eq", "ne"):
        inside = b1 <= a1 and a2 <= b2
        return inside if prefix == "eq" else not inside
    return {"lt": a1 < b1, "gt": a2 > b2, "le": a1 < b2, "ge": a2 > b1, "sa": a1 >= b2, "eb": a2 <= b1}[prefix]


def _parse_value(name: str, param: Param, modifier: str | None, raw: str) -> Any:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise SearchError(f"{name}:missing must be true or false")
        return raw == "true"
    if param.kind == "token":
        if "|" in raw:
            system, code = raw.split("|", 1)
            return system, code
        return None, raw
    if param.kind == "reference":
        parts = raw.rstrip("/").split("/")
        ref_type = modifier or (parts[-2] if len(parts) >= 2 else None) or param.target
        if param.target and ref_type != param.target:
            raise SearchError(f"{name} must refer to a {param.target}")
        return ref_type, parts[-1]
    if param.kind == "date":
        prefix = raw[:2] if raw[:2] in PREFIXES else "eq"
        text = raw[2:] if raw[:2] in PREFIXES else raw
        parsed = date_range(text)
        if parsed is None:
            raise SearchError(f"{name}: invalid date (expected a FHIR date with an optional prefix)")
        return prefix, parsed
    return raw


_MODIFIERS: dict[Kind, frozenset[str]] = {
    "token": frozenset({"missing", "not", "text"}),
    "reference": frozenset({"missing"}),
    "date": frozenset({"missing"}),
    "string": frozenset({"missing", "exact", "contains"}),
}


# -- the query -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_type: str
    filters: tuple[Filter, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # (parameter, descending)
    elements: tuple[str, ...] | None = None
    summary_count: bool = False
    used: tuple[tuple[str, str], ...] = ()  # the filter and sort parameters honoured, for links
    ignored: tuple[str, ...] = field(default=())

    def matches(self, resource: Mapping[str, Any]) -> bool:
        return all(f.matches(resource) for f in self.filters)

    def ordered(self, resources: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        """`resources` sorted by `_sort` (as they are, not copied, when there is no `_sort`)."""
        if not self.sort:
            return resources
        params = search_params(self.resource_type)
        keys = [(params[name], descending) for name, descending in self.sort]

        def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
            for param, descending in keys:
                ka, kb = _sort_key(param, a), _sort_key(param, b)
                if ka == kb:
                    continue
                if ka is None or kb is None:  # missing values last, whatever the direction
                    return 1 if ka is None else -1
                result = -1 if ka < kb else 1
                return -result if descending else result
            return 0

        return sorted(resources, key=functools.cmp_to_key(compare))

    def shape(self, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """`_elements`: only the asked-for top-level elements (and the mandatory ones), tagged SUBSETTED."""
        if self.elements is None:
            return resource
        kept = {k: v for k, v in resource.items() if k in ("resourceType", "id") or k in self.elements}
        meta = dict(resource.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                                              "code": "SUBSETTED"}]
        return {**kept, "meta": meta}


def _sort_key(param: Param, resource: Mapping[str, Any]) -> Any:
    elements = [v for path in param.paths for v in values_at(resource, path)]
    if param.kind == "date":
        ranges = [r for r in map(_element_range, elements) if r is not None]
        return min(r[0] for r in ranges) if ranges else None
    if param.kind == "string":
        texts = [_fold(s) for e in elements for s in _strings(e)]
        return min(texts) if texts else None
    if param.kind == "reference":
        refs = [e["reference"] for e in elements if isinstance(e, Mapping) and isinstance(e.get("reference"), str)]
        return min(refs) if refs else None
    codes = [code for e in elements for _, code, _ in _codes(e) if code]
    return min(codes) if codes else None


def parse_query(resource_type: str, items: Iterable[tuple[str, str]], *,
                unknown: Literal["ignore", "error"] = "ignore") -> SearchQuery:
    """Parse query parameters (already percent-decoded, in order) for a search of `resource_type`."""
    params = search_params(resource_type)
    filters: list[Filter] = []
    used: list[tuple[str, str]] = []
    ignored: list[str] = []
    sort: list[tuple[str, bool]] = []
    elements: tuple[str, ...] | None = None
    summary_count = False
    for key, raw in items:
        if len(raw) > MAX_VALUE_LENGTH:
            raise SearchError(f"{key[:64]}: value longer than {MAX_VALUE_LENGTH} characters")
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMS:
            if name == "_sort":
                sort.extend(_parse_sort(raw, params, unknown, ignored))
                used.append((key, raw))
            elif name == "_elements":
                elements = tuple(e.strip() for e in raw.split(",") if e.strip())
                used.append((key, raw))
            elif name == "_summary":
                if raw == "count":
                    summary_count = True
                    used.append((key, raw))
                elif raw not in ("false", "true", "data", "text"):
                    raise SearchError("_summary must be one of true, false, count, data, text")
            continue
        param = params.get(name)
        if param is None:
            if unknown == "error":
                raise SearchError(f"Unknown search parameter: {name[:64]}")
            ignored.append(name)
            continue
        if modifier and modifier not in _MODIFIERS[param.kind] and not (param.kind == "reference" and
                                                                         modifier[:1].isupper()):
            raise SearchError(f"Unsupported modifier :{modifier[:32]} on {name}")
        if not raw and modifier != "missing":
            continue  # an empty value is ignored (FHIR §3.1.1.5.x: parameters with no value)
        values = tuple(_parse_value(name, param, modifier or None, part) for part in raw.split(","))
        filters.append(Filter(name, param, modifier or None, values))
        used.append((key, raw))
    return SearchQuery(resource_type, tuple(filters), tuple(sort), elements, summary_count, tuple(used),
                       tuple(ignored))


def _parse_sort(raw: str, params: Mapping[str, Param], unknown: str, ignored: list[str]) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-")
        if name not in params:
            if unknown == "error":
                raise SearchError(f"Unknown sort parameter: {name[:64]}")
            ignored.append(f"_sort:{name[:64]}")
            continue
        keys.append((name, descending))
    return keys


Predicate = Callable[[Mapping[str, Any]], bool]
