"""Operator endpoints over the resilience layer and the job queue (bearer operator token on all).

Provider status and feature flags (runbook 000_030ea53f0735abf7.txt §2, §3, §8):

    GET  /api/admin/provider-status          every provider's monitor status, with fallback_active
    GET  /api/admin/features                 every flag's global value
    POST /api/admin/features                 {"feature": ..., "enabled": ...} (000 §3)
    POST /api/admin/features/batch           {"updates": [{"feature", "enabled"}, ...]} (000 §8): all or none
    GET  /api/admin/features/{flag}          one flag (404 unknown)
    PUT  /api/admin/features/{flag}          {"enabled": ...}

The job queue (runbook 002_437ee203264dfa64.txt §6.3, §7.2), every answer with `success`:

    GET  /fhir/admin/queue/stats             {"stats": {waiting, active, completed, failed, delayed, paused}}
    GET  /fhir/admin/queue/failed?limit=50&offset=0   newest first
    POST /fhir/admin/queue/retry/{job_id}    404 unknown job, 409 not failed
    POST /fhir/admin/queue/clean             retention, or `{"state", "graceSeconds", "limit"}`
    POST /fhir/admin/queue/pause | resume    active jobs finish, none start
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request

from integrations.queue import Job, JobState
from integrations.resilience import FlagUpdate
from integrations.service.auth import OperatorAuth
from integrations.service.bodies import CleanBody, FlagBatch, FlagChange, FlagUpdateBody, read_body
from integrations.service.components import ServiceComponents
from integrations.service.config import ServiceConfig
from integrations.service.errors import BadRequest
from integrations.service.health import provider_json
from integrations.service.openapi_doc import body
from integrations.sync.models import iso

JsonObject = dict[str, object]


def _ms_iso(ms: int | None) -> str | None:
    return None if ms is None else iso(datetime.fromtimestamp(ms / 1000, UTC))


def job_json(job: Job) -> JsonObject:
    """A job as §6.3's failed-job listing shows it. Job data holds record and org ids only (never PHI)."""
    return {
        "id": job.id, "name": job.name, "data": job.data, "state": job.state.value,
        "failedReason": job.failed_reason, "attemptsMade": job.attempts_made, "attempts": job.attempts,
        "timestamp": _ms_iso(job.created_ms), "processedOn": _ms_iso(job.processed_ms),
        "finishedOn": _ms_iso(job.finished_ms),
    }


def _flag_json(components: ServiceComponents, flag: str) -> JsonObject:
    enabled = components.flags.is_enabled(flag)  # UnknownFeatureFlag -> 404 at the boundary
    return {"success": True, "feature": flag, "enabled": enabled,
            "userOverrides": components.flags.override_count(flag)}


def flags_router(config: ServiceConfig, components: ServiceComponents) -> APIRouter:
    router = APIRouter(prefix="/api/admin", tags=["providers and flags"], dependencies=[Depends(OperatorAuth(config))])
    flags = components.flags

    @router.get("/provider-status")
    async def provider_status() -> JsonObject:
        providers = {vendor: provider_json(client.status()) for vendor, client in sorted(components.providers.items())}
        return {"success": True, "timestamp": iso(components.clock.now()), "providers": providers}

    @router.get("/features")
    async def list_features() -> JsonObject:
        return {"success": True, "features": flags.snapshot()}

    @router.post("/features", openapi_extra=body(FlagUpdateBody))
    async def set_feature(request: Request) -> JsonObject:
        body = await read_body(request, FlagUpdateBody, required=True)
        flags.update(body.feature, body.enabled)
        return _flag_json(components, body.feature)

    @router.post("/features/batch", openapi_extra=body(FlagBatch))
    async def batch(request: Request) -> JsonObject:
        body = await read_body(request, FlagBatch, required=True)
        names = [u.feature for u in body.updates]
        if len(set(names)) != len(names):
            raise BadRequest("a feature appears twice in one batch", code="duplicate_feature")
        flags.update_many([FlagUpdate(u.feature, u.enabled) for u in body.updates])
        return {"success": True, "updated": len(body.updates), "features": flags.snapshot()}

    @router.get("/features/{flag}")
    async def get_feature(flag: str) -> JsonObject:
        return _flag_json(components, flag)

    @router.put("/features/{flag}", openapi_extra=body(FlagChange))
    async def put_feature(flag: str, request: Request) -> JsonObject:
        body = await read_body(request, FlagChange, required=True)
        flags.update(flag, body.enabled)
        return _flag_json(components, flag)

    return router


def queue_router(config: ServiceConfig, components: ServiceComponents) -> APIRouter:
    router = APIRouter(prefix="/fhir/admin/queue", tags=["queue"], dependencies=[Depends(OperatorAuth(config))])
    queue = components.queue

    @router.get("/stats")
    async def stats() -> JsonObject:
        s = await queue.stats()
        return {"success": True, "queue": queue.name, "paused": await queue.is_paused(),
                "stats": {"waiting": s.waiting, "active": s.active, "completed": s.completed, "failed": s.failed,
                          "delayed": s.delayed, "paused": s.paused}}

    @router.get("/failed")
    async def failed(limit: int = Query(50, ge=1, le=config.max_list_limit),
                     offset: int = Query(0, ge=0)) -> JsonObject:
        jobs = await queue.failed_jobs(limit, offset)
        return {"success": True, "count": len(jobs), "jobs": [job_json(j) for j in jobs]}

    @router.post("/retry/{job_id}")
    async def retry(job_id: str) -> JsonObject:
        job = await queue.retry(job_id)  # JobNotFound -> 404, InvalidJobState -> 409
        now = await queue.get_job(job_id)  # as it is now (waiting, or running already)
        return {"success": True, "job": job_json(now if now is not None else job)}

    @router.post("/clean", openapi_extra=body(CleanBody, required=False))
    async def clean(request: Request) -> JsonObject:
        body = await read_body(request, CleanBody)
        if body.state is None:
            if body.limit is not None or body.grace_s:
                raise BadRequest("graceSeconds and limit need a state", code="invalid_request")
            removed = await queue.clean_old()
            return {"success": True, "removed": removed, "mode": "retention"}
        removed = await queue.clean(JobState(body.state), body.grace_s, body.limit)
        return {"success": True, "removed": removed, "mode": body.state}

    @router.post("/pause")
    async def pause() -> JsonObject:
        await queue.pause()
        return {"success": True, "paused": True}

    @router.post("/resume")
    async def resume() -> JsonObject:
        await queue.resume()
        return {"success": True, "paused": False}

    return router
