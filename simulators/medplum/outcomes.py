"""Medplum's OperationOutcome shapes (@medplum/core outcomes, reference/vendors.md §3 "Error
OperationOutcome shapes") and `medplum_outcome`, the personality's outcome factory.

Statuses with a fixed Medplum constant answer that constant whatever text the core passes
(`notFound`, `gone`, `preconditionFailed`, `tooManyRequests`, `unauthorized`, `forbidden`, `allOk`,
`accepted`); everything else is `badRequest`-shaped: no id, the core's issue code and text.
"""

from __future__ import annotations

from simulators.fhir.outcome import JsonObject, operation_outcome

#: status -> (OperationOutcome id, issue code, text, severity) of Medplum's constants.
_CONSTANTS: dict[int, tuple[str, str, str, str]] = {
    200: ("allok", "informational", "All OK", "information"),
    202: ("accepted", "informational", "Accepted", "information"),
    401: ("unauthorized", "login", "Unauthorized", "error"),
    403: ("forbidden", "forbidden", "Forbidden", "error"),
    404: ("not-found", "not-found", "Not found", "error"),
    410: ("gone", "deleted", "Gone", "error"),
    412: ("precondition-failed", "processing", "Precondition Failed", "error"),
    429: ("too-many-requests", "throttled", "Too Many Requests", "error"),
}


def medplum_outcome(status: int, code: str, text: str) -> JsonObject:
    constant = _CONSTANTS.get(status)
    if constant is not None and not (status == 404 and code != "not-found"):
        outcome_id, issue_code, fixed_text, severity = constant
        return operation_outcome(issue_code, fixed_text, severity=severity, outcome_id=outcome_id)
    return operation_outcome(code, text, severity="error" if status >= 400 else "information")


def not_found() -> JsonObject:
    return medplum_outcome(404, "not-found", "Not found")


def unauthorized() -> JsonObject:
    return medplum_outcome(401, "login", "Unauthorized")


def forbidden() -> JsonObject:
    return medplum_outcome(403, "forbidden", "Forbidden")


def precondition_failed() -> JsonObject:
    return medplum_outcome(412, "processing", "Precondition Failed")


def too_many_requests(diagnostics: str | None = None) -> JsonObject:
    outcome = medplum_outcome(429, "throttled", "Too Many Requests")
    if diagnostics is not None:
        outcome["issue"][0]["diagnostics"] = diagnostics
    return outcome


def bad_request(text: str, expression: tuple[str, ...] = ()) -> JsonObject:
    """Medplum's `badRequest(details, expression)`: code `invalid`, no id."""
    return operation_outcome("invalid", text, expression=expression)
