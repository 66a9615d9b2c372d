"""Admin routes that change a simulator's data behind its clients' backs (data drift).

    PUT    /admin/drift/{type}/{id}                     replace the content, keeping versionId and
                                                        lastUpdated (the ETag a client holds now lies)
    DELETE /admin/drift/{type}/{id}                     delete it (a tombstone version, as a DELETE)
    POST   /admin/drift/{type}/{id}/touch               a new version with the same content
    POST   /admin/drift/{type}/{id}/shift-last-updated  move meta.lastUpdated by {"seconds": s}

`?tenant=<name>` picks one of the simulator's per-tenant stores (Cerner serves one store per
tenant); without it the default store is changed. Each uses the store's own drift method
(`simulators.fhir.store.ResourceStore`: `replace_silently`, `delete`, `touch`,
`shift_last_updated`) and answers the resource's type, id and meta afterwards (`{"deleted": ...}`
for a delete). Unknown or deleted resources are 404, content that does not
validate as R4 is 400, both as OperationOutcomes; nothing here is written to a log but type and id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulators.admin.auth import ADMIN_SECURITY, admin_route_class
from simulators.errors import InvalidResource, ResourceNotFound, StoreError
from simulators.fhir.outcome import OutcomeError, operation_outcome
from simulators.fhir.store import Resource, ResourceStore

logger = logging.getLogger(__name__)

ResourceType = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$", description="a FHIR resource type")]
ResourceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$", description="a FHIR resource id")]
Tenant = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._\-]{1,64}$", description="which tenant's store")]
#: Furthest `lastUpdated` may be shifted: 10 years either way.
MAX_SHIFT_S = 10 * 366 * 86_400.0


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=-MAX_SHIFT_S, le=MAX_SHIFT_S, description="negative: into the past")


def _summary(resource: Resource) -> dict[str, object]:
    return {"resourceType": resource.get("resourceType"), "id": resource.get("id"), "meta": resource.get("meta")}


def _store_error(exc: StoreError) -> OutcomeError:
    if isinstance(exc, ResourceNotFound):
        return OutcomeError(404, operation_outcome("not-found", str(exc)))
    if isinstance(exc, InvalidResource):
        return OutcomeError(400, operation_outcome("invalid", exc.message, expression=exc.expression))
    return OutcomeError(409, operation_outcome("conflict", str(exc)))


def drift_router(store: ResourceStore | None, admin_token: str,
                 tenant_stores: Mapping[str, ResourceStore] | None = None) -> APIRouter:
    """Drift on `store`, or on `tenant_stores[tenant]` when the request names a tenant."""
    router = APIRouter(prefix="/admin/drift", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: data drift"])
    tenants = tenant_stores or {}

    def pick(tenant: str | None) -> ResourceStore:
        chosen = store if tenant is None else tenants.get(tenant)
        if chosen is None:
            text = "no default store: name a tenant" if tenant is None else f"no tenant {tenant!r}"
            raise OutcomeError(404, operation_outcome("not-found", text))
        return chosen

    @router.put("/{resource_type}/{resource_id}", summary="Replace content, keeping versionId and lastUpdated")
    async def replace_resource(resource_type: ResourceType, resource_id: ResourceId,
                               resource: Annotated[dict[str, Any], Body(description="new content")],
                               tenant: Tenant = None) -> JSONResponse:
        if resource.get("resourceType", resource_type) != resource_type:
            raise OutcomeError(400, operation_outcome("invalid", "resourceType does not match the URL",
                                                      expression=["resourceType"]))
        if not isinstance(resource.get("meta", {}), dict):
            raise OutcomeError(400, operation_outcome("invalid", "meta must be an object", expression=["meta"]))
        if resource.get("id", resource_id) != resource_id:
            raise OutcomeError(400, operation_outcome("invalid", "id does not match the URL", expression=["id"]))
        try:
            changed = pick(tenant).replace_silently(resource_type, resource_id, resource)
        except StoreError as exc:
            raise _store_error(exc) from None
        logger.info("drift: %s/%s replaced silently", resource_type, resource_id)
        return JSONResponse(_summary(changed))

    @router.delete("/{resource_type}/{resource_id}", summary="Delete behind the clients' backs")
    async def delete_resource(resource_type: ResourceType, resource_id: ResourceId,
                              tenant: Tenant = None) -> JSONResponse:
        try:
            version = pick(tenant).delete(resource_type, resource_id)
        except StoreError as exc:
            raise _store_error(exc) from None
        if version is None:
            raise OutcomeError(404, operation_outcome("not-found", f"{resource_type}/{resource_id} is already deleted"))
        logger.info("drift: %s/%s deleted", resource_type, resource_id)
        return JSONResponse({"resourceType": resource_type, "id": resource_id, "deleted": True, "versionId": version})

    @router.post("/{resource_type}/{resource_id}/touch", summary="Bump the version without changing content")
    async def touch_resource(resource_type: ResourceType, resource_id: ResourceId,
                             tenant: Tenant = None) -> JSONResponse:
        try:
            touched = pick(tenant).touch(resource_type, resource_id)
        except StoreError as exc:
            raise _store_error(exc) from None
        logger.info("drift: %s/%s touched", resource_type, resource_id)
        return JSONResponse(_summary(touched))

    @router.post("/{resource_type}/{resource_id}/shift-last-updated", summary="Move meta.lastUpdated")
    async def shift_resource(resource_type: ResourceType, resource_id: ResourceId, body: Shift,
                             tenant: Tenant = None) -> JSONResponse:
        try:
            shifted = pick(tenant).shift_last_updated(resource_type, resource_id, body.seconds)
        except StoreError as exc:
            raise _store_error(exc) from None
        logger.info("drift: %s/%s lastUpdated shifted by %gs", resource_type, resource_id, body.seconds)
        return JSONResponse(_summary(shifted))

    return router
