"""Request bodies: typed (pydantic, strict, no extra fields) and read by one function, `read_body`.

Bodies are parsed from the raw bytes whatever the Content-Type, because the runbook's own commands send
JSON with curl's default form type (`curl -X POST .../reconciliation/run -d '{"batchSize": 2000}'`).
An empty body is the model's defaults (when it has them); text that is not JSON is 400
`malformed_json`; JSON of the wrong shape is 422 `invalid_request`, naming fields, never their values.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from integrations.service.errors import BadRequest, ServiceError

M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 5 * 1024 * 1024
#: Bounds of `CleanBody` (a larger `limit` overflowed SQLite's INTEGER: a 500): ten years, a million jobs.
MAX_GRACE_S = 3650 * 86400.0
MAX_CLEAN = 1_000_000


class InvalidBody(ServiceError):
    status = 422
    code = "invalid_request"


def integral(value: object) -> object:
    """A JSON number with no fraction (`1000.0`) as the integer it is (JSON Schema's `integer` says so too,
    and a client whose numbers are floats sends it); strict mode would refuse it, and still refuses
    `1000.5`, `"1000"` and `true`. Only within a float's exact integers (2**53): no giant `1e300`."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)


class FlagChange(Body):
    """`PUT /api/admin/features/{flag}`."""

    enabled: bool


class FlagUpdateBody(Body):
    """`POST /api/admin/features` (runbook 000 §3) and one entry of a batch (§8)."""

    feature: str = Field(min_length=1, max_length=200)
    enabled: bool


class FlagBatch(Body):
    updates: list[FlagUpdateBody] = Field(min_length=1, max_length=500)


class CleanBody(Body):
    """`POST /fhir/admin/queue/clean`: no body applies retention (completed 7 d, failed 30 d); a `state`
    removes that state's jobs finished more than `graceSeconds` ago (at most `limit`)."""

    state: Literal["completed", "failed"] | None = None
    grace_s: float = Field(default=0.0, ge=0, le=MAX_GRACE_S, alias="graceSeconds")
    limit: int | None = Field(default=None, ge=1, le=MAX_CLEAN)

    @field_validator("limit", mode="before")
    @classmethod
    def _integral(cls, value: object) -> object:
        return integral(value)


class ReconciliationBody(Body):
    """`POST /fhir/admin/reconciliation/{run,cron}` (runbook 002 §5 Step 5A, §7.2 Scenario 2)."""

    stale_days: float | None = Field(default=None, gt=0, le=3650, alias="staleDays")
    batch_size: int | None = Field(default=None, ge=1, le=100_000, alias="batchSize")
    org_id: str | None = Field(default=None, min_length=1, max_length=128, alias="orgId")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _integral(cls, value: object) -> object:
        return integral(value)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 date (`2024-01-01`: midnight UTC) or date-time (`Z` or an offset; naive: UTC), as the
    export's `start`/`end`. ValueError (naming no value) otherwise."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date or date-time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date (`2024-01-01`: midnight UTC) or date-time (naive: UTC); 400 otherwise."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time", code="invalid_query") from None


class AuditMirrorBody(Body):
    """`POST /fhir/admin/audit-mirror/{run,cron}` (runbook 002 §5 Step 5B, §6.3): `{"limit": 1000,
    "forceSince": "2024-01-01T00:00:00Z"}`, both optional (limit: `ServiceConfig.audit_mirror_limit`)."""

    limit: int | None = Field(default=None, ge=1, le=100_000)
    force_since: datetime | None = Field(default=None, alias="forceSince")

    @field_validator("limit", mode="before")
    @classmethod
    def _integral(cls, value: object) -> object:
        return integral(value)

    @field_validator("force_since", mode="before")
    @classmethod
    def _instant(cls, value: object) -> object:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError("must be an ISO 8601 date or date-time string")
        return parse_instant(value)


async def read_json(request: Request, *, required: bool) -> object | None:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes", code="body_too_large")
    if not raw.strip():
        if required:
            raise BadRequest("a JSON body is required", code="missing_body")
        return None
    try:
        value: object = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON", code="malformed_json") from None
    return value


async def read_object(request: Request) -> dict[str, object]:
    """A required JSON object (a FHIR resource, a Bundle)."""
    value = await read_json(request, required=True)
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object", code="malformed_json")
    return value


def problems(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:10]:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "body"
        parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid body"


async def read_body(request: Request, model: type[M], *, required: bool = False) -> M:
    value = await read_json(request, required=required)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidBody("the request body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidBody(problems(exc)) from None
