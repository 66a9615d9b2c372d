"""Epic's OperationOutcomes: FHIR issue codes plus Epic's numeric codes in `issue[].details.coding`.

Codes, severities and texts from Epic's published error-code registry (reference/vendors.md §1,
"Errors"; api-evangelist/epic-systems errors/epic-systems-error-codes.yml, captured from
fhir.epic.com/Specifications). Which code answers which situation:

| status | issue code            | Epic code | registry text                                              |
|--------|-----------------------|-----------|------------------------------------------------------------|
| 400    | invalid, value        | 4100      | The resource request contained an invalid parameter         |
| 400    | structure             | 59105     | A structural issue in the content.                          |
| 400    | required              | 59108     | Required element missing                                    |
| 403    | forbidden, security   | 4118      | User not authorized for request                             |
| 404    | not-found             | 4102      | The read resource request contained an invalid ID           |
| 409    | duplicate             | 59141     | An attempt was made to create a duplicate record.           |
| 410    | deleted               | 4103      | The resource requested has been deleted                     |
| 410    | expired (paging)      | 4113      | Session ID for cached search results has expired.           |
| 422    | business-rule, processing, invariant | 59159 | The content/operation failed to pass a business rule |
| 5xx    | any                   | 59177     | An unexpected internal error has occurred.                  |
| other  | (401, 405, 412, 429)  | none      | plain FHIR issue only                                       |

Severity is the registry's (Fatal codes give `fatal`); without an Epic code it is `error`.
`coding[].system` is a setting (`EpicSettings.error_code_system`): vendors.md gives the codes'
location but not the system URI. The warning codes belong in a searchset, not an error response:
`epic_search_outcome` puts them in one OperationOutcome entry (`search.mode` outcome) of the page:

| warning | when                                                                                   |
|---------|----------------------------------------------------------------------------------------|
| 4122    | per unknown query parameter: Epic ignores it and searches without it                   |
| 4101    | the search matched nothing (200 with this warning, not a 404)                          |
| 4127    | a Patient search matched more than `patient_results_warning` (Epic: 100), first page   |

Epic's registry says 4127 is sent "whenever Patient.Search exceeds 100 results"; whether Epic also cuts
the results at 100 is not in vendors.md, so the simulator warns but still pages through all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.fhir.personality import SearchOutcomeFactory, SearchSummary

JsonObject = dict[str, Any]

#: Epic's error-code system: Epic's own OID for these codes, as commonly seen in Epic responses.
#: vendors.md does not confirm it, so it is `EpicSettings.error_code_system`.
DEFAULT_ERROR_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"

#: Epic code -> (severity, registry description).
EPIC_CODES: dict[str, tuple[str, str]] = {
    "4100": ("fatal", "The resource request contained an invalid parameter"),
    "4101": ("warning", "Resource request returns no results"),
    "4102": ("fatal", "The read resource request contained an invalid ID"),
    "4103": ("fatal", "The resource requested has been deleted"),
    "4113": ("fatal", "Session ID for cached search results has expired."),
    "4118": ("fatal", "User not authorized for request"),
    "4122": ("warning", "An unknown query parameter was supplied by the client"),
    "4127": ("warning", "Additional data may exist"),
    "59105": ("fatal", "A structural issue in the content."),
    "59108": ("fatal", "Required element missing"),
    "59141": ("fatal", "An attempt was made to create a duplicate record."),
    "59159": ("fatal", "The content/operation failed to pass a business rule, and so could not proceed."),
    "59177": ("fatal", "An unexpected internal error has occurred."),
}

_BY_ISSUE: dict[tuple[int, str], str] = {
    (400, "invalid"): "4100",
    (400, "value"): "4100",
    (400, "structure"): "59105",
    (400, "required"): "59108",
    (403, "forbidden"): "4118",
    (403, "security"): "4118",
    (404, "not-found"): "4102",
    (409, "duplicate"): "59141",
    (410, "deleted"): "4103",
    (410, "expired"): "4113",
    (422, "business-rule"): "59159",
    (422, "processing"): "59159",
    (422, "invariant"): "59159",
}


def epic_code(status: int, code: str) -> str | None:
    """The Epic numeric code for an error with this status and FHIR issue code, if Epic has one."""
    if status >= 500:
        return "59177"
    return _BY_ISSUE.get((status, code))


def _issue(code: str, text: str, epic: str | None, system: str, severity: str) -> JsonObject:
    details: JsonObject = {}
    if epic is not None:
        epic_severity, display = EPIC_CODES[epic]
        severity = epic_severity
        details["coding"] = [{"system": system, "code": epic, "display": display}]
    details["text"] = text
    return {"severity": severity, "code": code, "details": details, "diagnostics": text}


def epic_outcome_factory(system: str = DEFAULT_ERROR_SYSTEM) -> Callable[[int, str, str], JsonObject]:
    """`FhirPersonality.outcome` for Epic: (status, issue code, text) -> OperationOutcome JSON."""

    def outcome(status: int, code: str, text: str) -> JsonObject:
        severity = "error" if status >= 400 else "information"
        return {"resourceType": "OperationOutcome",
                "issue": [_issue(code, text, epic_code(status, code), system, severity)]}

    return outcome


#: FHIR issue-type code of each warning.
_WARNING_TYPES = {"4101": "informational", "4122": "not-supported", "4127": "incomplete"}


def warning_issue(epic: str, text: str, system: str = DEFAULT_ERROR_SYSTEM) -> JsonObject:
    """One warning issue with an Epic code (4101, 4122, 4127) for an OperationOutcome inside a searchset."""
    return _issue(_WARNING_TYPES[epic], text, epic, system, "warning")


def epic_search_outcome(system: str = DEFAULT_ERROR_SYSTEM, *,
                        patient_results_warning: int | None = 100) -> SearchOutcomeFactory:
    """`FhirPersonality.search_outcome` for Epic: the warnings of the table above, or None."""

    def outcome(found: SearchSummary) -> JsonObject | None:
        issues = [warning_issue("4122", f"Unknown query parameter ignored: {name[:64]}", system)
                  for name in found.ignored]
        if found.total == 0:
            issues.append(warning_issue("4101", "No results were found", system))
        if (patient_results_warning is not None and found.resource_type == "Patient" and found.offset == 0
                and found.total > patient_results_warning):
            issues.append(warning_issue(
                "4127", f"More than {patient_results_warning} patients matched; refine the search", system))
        return {"resourceType": "OperationOutcome", "issue": issues} if issues else None

    return outcome
