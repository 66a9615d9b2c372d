"""Request bodies: typed (pydantic, strict, no extra fields) and read by one function, `read_body`.

Bodies are parsed from the raw bytes whatever the Content-Type, because the runbook's own commands send
JSON with curl's default form type (`curl -X POST .../reconciliation/run -d '{"batchSize": 2000}'`).
An empty body is the model's defaults (when it has them); text that is not JSON is 400
`malformed_json`; JSON of the wrong shape is 422 `invalid_request`, naming fields, never their values.
"""

from __future__ import annotations

import json
from typing import Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrations.service.errors import BadRequest, ServiceError

M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 5 * 1024 * 1024


class InvalidBody(ServiceError):
    status = 422
    code = "invalid_request"


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
    grace_s: float = Field(default=0.0, ge=0, alias="graceSeconds")
    limit: int | None = Field(default=None, ge=1)


class ReconciliationBody(Body):
    """`POST /fhir/admin/reconciliation/{run,cron}` (runbook 002 §5 Step 5A, §7.2 Scenario 2)."""

    stale_days: float | None = Field(default=None, gt=0, le=3650, alias="staleDays")
    batch_size: int | None = Field(default=None, ge=1, le=100_000, alias="batchSize")
    org_id: str | None = Field(default=None, min_length=1, max_length=128, alias="orgId")


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
