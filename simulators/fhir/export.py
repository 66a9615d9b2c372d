"""Bulk Data `$export` (FHIR Bulk Data Access IG v2, "Export" and "Bulk Data Status Request").

Kick-off `GET [base]/$export`, `[base]/Patient/$export` or `[base]/Group/{id}/$export` with
`Prefer: respond-async` (without it: 400) answers `202 Accepted` with `Content-Location` pointing at
the job's status URL. Parameters: `_type` (comma list of resource types), `_since` (instant),
`_outputFormat` (`application/fhir+ndjson`, `application/ndjson` or `ndjson`). The data is taken when
the job starts (its `transactionTime`).

Status `GET [base]/$export-status/{job}` answers `202` with `Retry-After` (the personality's
`export_retry_after_s`) and `X-Progress: in-progress <n>%` until `export_duration_s` have passed on the
injected clock, then `200` with the manifest (`transactionTime`, `request`, `requiresAccessToken`,
`output[]` with `type`, `url`, `count`, `error[]`). `DELETE` on the status URL cancels the job (202);
polling a cancelled or unknown job is 404. Files: `GET [base]/$export-file/{job}/{n}`, NDJSON, one
resource per line. Only the client that started a job can see it; others get 404.

Kick-off needs the personality's `supports_export`; a personality with `max_exports_per_client` answers
429 while that many of the client's jobs are still running (Cerner, vendors.md §2).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from integrations.clock import Clock
from simulators.fhir.http import fhir_base, json_response
from simulators.fhir.interaction import Interaction
from simulators.fhir.outcome import OutcomeError
from simulators.fhir.search import date_range, search_params
from simulators.fhir.service import FhirService
from simulators.fhir.store import Resource, format_instant

JsonObject = dict[str, Any]
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
#: Most jobs kept (finished ones are forgotten first).
MAX_JOBS = 1000


@dataclass(slots=True)
class _Job:
    id: str
    client: str
    scope_type: str  # "*", "Patient" or "Group": what the kick-off was authorized for
    request_url: str
    started_at: float
    transaction_time: str
    files: list[tuple[str, bytes, int]] = field(default_factory=list)  # (type, ndjson, count)


class ExportJobs:
    """Running and finished export jobs of one simulator."""

    def __init__(self, service: FhirService, clock: Clock, rng: random.Random) -> None:
        self._service = service
        self._clock = clock
        self._rng = rng
        self._jobs: dict[str, _Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def done(self, job: _Job) -> bool:
        return self._clock.monotonic() - job.started_at >= self._service.personality.export_duration_s

    def start(self, client: str, scope_type: str, request_url: str, resources: list[Resource]) -> _Job:
        limit = self._service.personality.max_exports_per_client
        running = [j for j in self._jobs.values() if j.client == client and not self.done(j)]
        if limit is not None and len(running) >= limit:
            raise self._service.error(429, "throttled",
                                      "There is already an export job in-progress for the client")
        if len(self._jobs) >= MAX_JOBS:
            for job_id in [j.id for j in self._jobs.values() if self.done(j)][: len(self._jobs) - MAX_JOBS + 1]:
                del self._jobs[job_id]
        job = _Job(f"{self._rng.getrandbits(96):024x}", client, scope_type, request_url, self._clock.monotonic(),
                   format_instant(self._clock.now()))
        by_type: dict[str, list[Resource]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        for resource_type in sorted(by_type):
            lines = b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                             for r in by_type[resource_type])
            job.files.append((resource_type, lines, len(by_type[resource_type])))
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str, client: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None or job.client != client:
            raise self._service.error(404, "not-found", "No such export job")
        return job

    def scope_type(self, job_id: str) -> str:
        """What the job's kick-off was authorized for ("*" for unknown jobs)."""
        job = self._jobs.get(job_id)
        return job.scope_type if job is not None else "*"

    def cancel(self, job_id: str, client: str) -> None:
        self.get(job_id, client)
        del self._jobs[job_id]

    def progress(self, job: _Job) -> int:
        duration = self._service.personality.export_duration_s
        elapsed = self._clock.monotonic() - job.started_at
        return 100 if duration <= 0 else min(99, int(100 * elapsed / duration))


def _kickoff_params(service: FhirService, request: Request) -> tuple[list[str] | None, str | None]:
    if "respond-async" not in request.headers.get("prefer", ""):
        raise service.error(400, "invalid", "Bulk export needs the header Prefer: respond-async")
    types: list[str] | None = None
    since: str | None = None
    for key, value in request.query_params.multi_items():
        if key == "_type":
            types = [t.strip() for t in value.split(",") if t.strip()]
            unknown = [t for t in types if t not in service.types]
            if unknown:
                raise service.error(400, "invalid", f"_type: unknown resource type {unknown[0][:64]}")
        elif key == "_since":
            parsed = date_range(value)
            if parsed is None:
                raise service.error(400, "invalid", "_since must be a FHIR instant")
            since = format_instant(parsed[0])
        elif key == "_outputFormat":
            if value not in OUTPUT_FORMATS:
                raise service.error(400, "invalid", "_outputFormat must be application/fhir+ndjson")
        elif service.personality.unknown_search_param == "error":
            raise service.error(400, "invalid", f"Unsupported export parameter: {key[:64]}")
    return types, since


def _select(service: FhirService, scope_type: str, group_id: str | None, types: list[str] | None,
            since: str | None) -> list[Resource]:
    store = service.store
    if scope_type == "*":
        resources = [r for t in store.types() if t in service.types for r in store.search(t, copy_results=False)]
    else:
        if group_id is not None:
            group = service.read("Group", group_id)
            patients = [str(m.get("entity", {}).get("reference", "")).split("/")[-1] for m in group.get("member", [])]
        else:
            patients = [p["id"] for p in store.search("Patient", copy_results=False)]
        resources = []
        for patient_id in patients:
            if store.exists("Patient", patient_id):
                resources.extend(service.compartment(patient_id))
        resources = [r for r in resources if r["resourceType"] == "Patient" or "patient" in
                     search_params(r["resourceType"])]
    if types is not None:
        resources = [r for r in resources if r["resourceType"] in types]
    if since is not None:
        resources = [r for r in resources if r["meta"]["lastUpdated"] >= since]
    return resources


def add_export_routes(router: APIRouter, service: FhirService, jobs: ExportJobs) -> None:
    """The kick-off, status, cancel and file routes (register them before the generic type routes)."""

    def refuse_unless_supported() -> None:
        if not service.personality.supports_export:
            raise service.error(404, "not-supported", "Bulk export is not supported")

    async def kickoff(request: Request, scope_type: str, group_id: str | None, segments: int) -> Response:
        refuse_unless_supported()
        client = await service.authorize(request, scope_type, Interaction.OPERATION)
        status = 500
        try:
            types, since = _kickoff_params(service, request)
            job = jobs.start(client, scope_type, str(request.url), _select(service, scope_type, group_id, types, since))
            status = 202
        except OutcomeError as exc:
            status = exc.status
            raise
        finally:
            service.report(client, Interaction.OPERATION, scope_type, group_id, status)
        outcome = service.personality.error(202, "informational", "Export started")
        return json_response(service.personality, outcome, 202,
                             {"Content-Location": f"{fhir_base(request, segments)}/$export-status/{job.id}"})

    @router.get("/$export")
    async def export_system(request: Request) -> Response:
        return await kickoff(request, "*", None, 1)

    @router.get("/Patient/$export")
    async def export_patients(request: Request) -> Response:
        return await kickoff(request, "Patient", None, 2)

    @router.get("/Group/{group_id}/$export")
    async def export_group(group_id: str, request: Request) -> Response:
        return await kickoff(request, "Group", group_id, 3)

    async def owner(request: Request, job_id: str) -> tuple[str, _Job]:
        refuse_unless_supported()
        client = await service.authorize(request, jobs.scope_type(job_id), Interaction.OPERATION)
        return client, jobs.get(job_id, client)

    @router.get("/$export-status/{job_id}")
    async def export_status(job_id: str, request: Request) -> Response:
        _, job = await owner(request, job_id)
        if not jobs.done(job):
            return Response(status_code=202, headers={
                "Retry-After": str(service.personality.export_retry_after_s),
                "X-Progress": f"in-progress {jobs.progress(job)}%"})
        base = fhir_base(request, 2)
        manifest = {
            "transactionTime": job.transaction_time, "request": job.request_url, "requiresAccessToken": True,
            "output": [{"type": t, "url": f"{base}/$export-file/{job.id}/{n}", "count": count}
                       for n, (t, _, count) in enumerate(job.files)],
            "error": [],
        }
        return Response(json.dumps(manifest, separators=(",", ":")).encode(), media_type="application/json")

    @router.delete("/$export-status/{job_id}")
    async def export_cancel(job_id: str, request: Request) -> Response:
        client, job = await owner(request, job_id)
        jobs.cancel(job.id, client)
        return json_response(service.personality, service.personality.error(202, "informational", "Job cancelled"),
                             202)

    @router.get("/$export-file/{job_id}/{number}")
    async def export_file(job_id: str, number: str, request: Request) -> Response:
        _, job = await owner(request, job_id)
        if not number.isdigit() or int(number) >= len(job.files) or not jobs.done(job):
            raise OutcomeError(404, service.personality.error(404, "not-found", "No such export file"))
        _, body, _ = job.files[int(number)]
        return Response(body, media_type=NDJSON)
