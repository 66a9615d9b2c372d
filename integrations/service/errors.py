"""The service's errors, and the ONE boundary that turns every typed error into a 4xx/5xx JSON body.

```
ServiceError                 root of this package's own failures (status, code, detail); an IntegrationError
├── Unauthenticated    401   no bearer token, or not a bearer token (`WWW-Authenticate: Bearer`)
├── Forbidden          403   a wrong token, a missing or wrong cron secret, an organisation the API key
│                            may not act for
├── NotFound           404   no such vendor, flag, job ...
├── Conflict           409   the target is not in a state the operation needs
└── BadRequest         400   malformed JSON, a missing or malformed header, a bad query parameter
```

`install_error_handlers(app)` maps, in one place, these and the typed errors of the layers below:
request validation (a malformed JSON body is 400, a body or query of the wrong shape 422), the job
queue's `JobNotFound` (404), `InvalidJobState` (409) and `StoreUnavailable` (503), the flags'
`UnknownFeatureFlag` (404), the sync pipeline's `SyncError` tree and the connector's errors:

| error (integrations.sync.errors)  | status | code                  |
|-----------------------------------|--------|-----------------------|
| InvalidResource                   | 422    | invalid_resource      |
| UnknownPatientToken               | 404    | unknown_patient_token |
| RecordNotFound                    | 404    | record_not_found      |
| WrongOrganisation                 | 403    | wrong_organisation    |
| ConsentDenied                     | 403    | consent_denied        |
| ExportForbidden                   | 403    | export_forbidden      |
| any other SyncError               | 400    | sync_error            |
| ConnectorError (Medplum failed)   | 502    | upstream_error (503 upstream_unavailable: retryable, or |
|                                   |        | the breaker is open)                                    |

A route never catches these itself; bad input never becomes a 5xx (only a failure upstream or of the
queue's store does).

Every error body is `{"success": false, "error": CODE, "detail": MESSAGE}`. Details never echo the
request's values (a malformed resource may carry PHI): validation errors name the field's location
and what was wrong with it, never its input.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from integrations.errors import IntegrationError
from integrations.fhir.errors import CircuitOpen, ConnectorError
from integrations.queue import InvalidJobState, JobNotFound, StoreUnavailable
from integrations.resilience import EhrUnavailable, UnknownFeatureFlag
from integrations.sync.errors import (
    ConsentDenied,
    ExportForbidden,
    InvalidResource,
    RecordNotFound,
    SyncError,
    UnknownPatientToken,
    WrongOrganisation,
)

logger = logging.getLogger(__name__)

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class ServiceError(IntegrationError):
    """Root of the service's own failures: an HTTP status, a short machine code and a PHI-free detail."""

    status = 500
    code = "service_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        self.detail = detail
        if code is not None:
            self.code = code
        super().__init__(detail)


class Unauthenticated(ServiceError):
    status = 401
    code = "unauthenticated"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "error": code, "detail": detail}, status_code=status,
                        headers=dict(headers) if headers else None)


def _location(loc: Sequence[object]) -> str:
    return ".".join(str(part) for part in loc) or "body"


async def _service_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return error_response(exc.status, exc.code, exc.detail, headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:10]]
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else code
    return error_response(exc.status_code, code, detail, exc.headers)


async def _job_not_found(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobNotFound)
    return error_response(404, "job_not_found", f"no job {exc.job_id!r} in queue {exc.queue!r}")


async def _invalid_job_state(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidJobState)
    return error_response(409, "invalid_job_state", str(exc))


async def _store_unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    logger.warning("queue store unavailable during %s", exc.operation)
    return error_response(503, "queue_unavailable", f"the job queue's store is unavailable ({exc.operation})",
                          {"Retry-After": "1"})


async def _unknown_flag(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownFeatureFlag)
    return error_response(404, "unknown_feature_flag", f"unknown feature flag {exc.flag!r}")


_SYNC_STATUS: tuple[tuple[type[SyncError], int, str], ...] = (
    (InvalidResource, 422, "invalid_resource"),
    (UnknownPatientToken, 404, "unknown_patient_token"),
    (RecordNotFound, 404, "record_not_found"),
    (WrongOrganisation, 403, "wrong_organisation"),
    (ConsentDenied, 403, "consent_denied"),
    (ExportForbidden, 403, "export_forbidden"),
)


async def _sync_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SyncError)
    for kind, status, code in _SYNC_STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, exc.detail)
    return error_response(400, "sync_error", exc.detail)


async def _connector_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConnectorError)
    logger.warning("%s call failed: %s", exc.vendor, type(exc).__name__)
    if exc.retryable or isinstance(exc, CircuitOpen | EhrUnavailable):
        retry = {"Retry-After": str(max(1, round(exc.retry_after_s or 1)))}
        return error_response(503, "upstream_unavailable", f"{exc.vendor} is unavailable ({type(exc).__name__})",
                              retry)
    return error_response(502, "upstream_error", f"{exc.vendor} call failed ({type(exc).__name__})")


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Anything else is a bug: a JSON 500 without the message (it could quote a value)."""
    route = getattr(request.scope.get("route"), "path", "unmatched")  # the template: no ids in the log
    logger.error("unhandled %s in %s %s", type(exc).__name__, request.method, route)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI, extra: Mapping[type[Exception], ErrorHandler] | None = None) -> None:
    """The one boundary: every typed error below the routes becomes a JSON body here."""
    handlers: dict[type[Exception], ErrorHandler] = {
        ServiceError: _service_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        JobNotFound: _job_not_found,
        InvalidJobState: _invalid_job_state,
        StoreUnavailable: _store_unavailable,
        UnknownFeatureFlag: _unknown_flag,
        SyncError: _sync_error,
        ConnectorError: _connector_error,
        Exception: _unexpected,
    }
    handlers.update(extra or {})
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
