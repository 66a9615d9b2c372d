"""Medplum's OperationOutcome shapes (@medplum/core outcomes, reference/vendors.md §3)."""

from __future__ import annotations

from simulators.fhir.outcome import JsonObject, operation_outcome


def not_found() -> JsonObject:
    return operation_outcome("not-found", "Not found", outcome_id="not-found")


def unauthorized() -> JsonObject:
    return operation_outcome("login", "Unauthorized", outcome_id="unauthorized")


def precondition_failed() -> JsonObject:
    return operation_outcome("processing", "Precondition Failed", outcome_id="precondition-failed")


def bad_request(text: str, expression: tuple[str, ...] = ()) -> JsonObject:
    """Medplum's `badRequest(details, expression)`: code `invalid`, no id."""
    return operation_outcome("invalid", text, expression=expression)
