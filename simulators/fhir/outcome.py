"""OperationOutcome builders and the one way every simulator answers an error.

- `operation_outcome(...)` builds the resource; vendor personalities wrap it in their own shapes
  (e.g. Medplum's `id: "not-found"`, see `simulators.medplum.outcomes`).
- `OutcomeError` is raised anywhere in a handler or dependency to answer with an OperationOutcome.
- `OutcomeRoute` (FastAPI's documented custom-`APIRoute` hook) renders `OutcomeError` and FastAPI's own
  `RequestValidationError` as OperationOutcomes, so a router is self-contained: an admin router
  mounted on any simulator answers 401/400 as OperationOutcomes without app-level handlers.
- `install_outcome_handlers(app)` covers what happens outside routes (unknown path, wrong method).

Validation messages name the field and the rule, never the offending value: a rejected body may
hold a credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from simulators.errors import SimulatorError

#: What FHIR servers answer with (Express, which Medplum runs on, adds the charset).
FHIR_JSON = "application/fhir+json; charset=utf-8"

JsonObject = dict[str, Any]


#: `json.dumps(..., separators=(",", ":"), ensure_ascii=False, allow_nan=False)` builds this encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_json(body: object) -> bytes:
    """Compact UTF-8 JSON, as Medplum writes it; refuses NaN/Infinity (not JSON)."""
    return _ENCODER.encode(body).encode("utf-8")


def fhir_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dump_json(body), status_code=status, headers=dict(headers or {}), media_type=FHIR_JSON)


def operation_outcome(code: str, text: str, *, severity: str = "error", outcome_id: str | None = None,
                      diagnostics: str | None = None, expression: Sequence[str] = ()) -> JsonObject:
    """One-issue OperationOutcome; `code` is a FHIR issue-type code (invalid, not-found, transient...)."""
    issue: JsonObject = {"severity": severity, "code": code, "details": {"text": text}}
    if diagnostics is not None:
        issue["diagnostics"] = diagnostics
    if expression:
        issue["expression"] = list(expression)
    outcome: JsonObject = {"resourceType": "OperationOutcome"}
    if outcome_id is not None:
        outcome["id"] = outcome_id
    outcome["issue"] = [issue]
    return outcome


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def issue_code_for_status(status: int) -> str:
    """The FHIR issue-type code a generic error with this status carries."""
    specific = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
                409: "conflict", 410: "deleted", 412: "processing", 429: "throttled", 500: "exception"}
    if status in specific:
        return specific[status]
    return "transient" if status >= 500 else "processing"


class OutcomeError(SimulatorError):
    """Answer the current request with `outcome` and `status` (plus `headers`)."""

    def __init__(self, status: int, outcome: JsonObject, headers: Mapping[str, str] | None = None) -> None:
        issues = outcome.get("issue") or [{}]
        super().__init__(f"{status}: {issues[0].get('details', {}).get('text', '')}")
        self.status = status
        self.outcome = outcome
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return fhir_response(self.outcome, self.status, self.headers)


def validation_outcome(errors: Sequence[Any]) -> JsonObject:
    """FastAPI/pydantic errors as one `invalid` OperationOutcome: where and what rule, never the value."""
    parts: list[str] = []
    expressions: list[str] = []
    for error in errors[:5]:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        expressions.append(loc)
        parts.append(f"{loc}: {error.get('msg', 'invalid')}" if loc else str(error.get("msg", "invalid")))
    return operation_outcome("invalid", "; ".join(parts) or "Invalid request", expression=expressions)


class OutcomeRoute(APIRoute):
    """An APIRoute whose errors come out as OperationOutcomes (400 for FastAPI's validation errors)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def outcome_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OutcomeError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return fhir_response(validation_outcome(exc.errors()), 400)

        return outcome_handler


async def _outcome_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OutcomeError):  # pragma: no cover - registered for OutcomeError only
        raise exc
    return exc.response()


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for it only
        raise exc
    return fhir_response(validation_outcome(exc.errors()), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it only
        raise exc
    outcome = operation_outcome(issue_code_for_status(exc.status_code), status_phrase(exc.status_code))
    return fhir_response(outcome, exc.status_code, exc.headers)


def install_outcome_handlers(app: FastAPI) -> None:
    """Unknown paths, wrong methods and stray validation errors answer as OperationOutcomes too."""
    app.add_exception_handler(OutcomeError, _outcome_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
