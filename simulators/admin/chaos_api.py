"""The `/admin/chaos` API: start, list and stop faults (behind the admin token).

    GET    /admin/chaos                      the state: newest fault per kind, every fault, counters
    DELETE /admin/chaos                      stop every fault
    PUT    /admin/chaos/<kind>               start a fault (body: its settings and an optional scope);
                                             answers the state plus the new fault's "id". A fault of
                                             the same kind and scope is replaced, so the first API's
                                             single-fault-per-kind calls keep their meaning.
    DELETE /admin/chaos/<kind>               stop every fault of that kind
    GET    /admin/chaos/faults/<id>          one fault (404 if unknown or ended)
    DELETE /admin/chaos/faults/<id>          stop one fault (404 if unknown or ended)

Kinds: outage, latency, error-rate, fail-next, malformed-body, slow-body (`simulators.admin.faults`).
Every answer is 200 JSON; errors are OperationOutcomes (400 for a bad body, 401 without the token).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from simulators.admin.auth import ADMIN_SECURITY, admin_route_class
from simulators.admin.faults import (
    ChaosState,
    ErrorRate,
    FailNext,
    Fault,
    Latency,
    MalformedBody,
    Outage,
    SlowBody,
)
from simulators.fhir.outcome import OutcomeError, operation_outcome

logger = logging.getLogger(__name__)

FAULT_ID = Path(pattern=r"^fault-[0-9]{1,12}$", description="a fault id, as a PUT answered it")


def _unknown_fault() -> OutcomeError:
    return OutcomeError(404, operation_outcome("not-found", "No active fault with that id"))


def chaos_admin_router(state: ChaosState, admin_token: str) -> APIRouter:
    """The `/admin/chaos` API over `state`, protected by `admin_token` (compared in constant time)."""
    router = APIRouter(prefix="/admin/chaos", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: chaos"])

    def answer(started: str | None = None) -> JSONResponse:
        body = state.to_json()
        if started is not None:
            body = {"id": started, **body}
        return JSONResponse(body)

    def start(fault: Fault) -> JSONResponse:
        active = state.add(fault)
        scope = "" if fault.scope is None else f" scope={fault.scope.model_dump(exclude_none=True)}"
        logger.info("chaos: %s %s on %s%s", active.id, fault.kind, fault.spec(), scope)
        return answer(active.id)

    def stop(kind: str) -> JSONResponse:
        stopped = state.remove_kind(kind)
        logger.info("chaos: %s off (%d stopped)", kind, stopped)
        return answer()

    @router.get("", summary="Chaos state: active faults and counters")
    async def get_chaos() -> JSONResponse:
        return answer()

    @router.delete("", summary="Stop every fault")
    async def clear_chaos() -> JSONResponse:
        state.clear()
        logger.info("chaos: all faults cleared")
        return answer()

    @router.put("/outage", summary="Start an outage (status or dropped connection)")
    async def put_outage(body: Outage) -> JSONResponse:
        return start(body)

    @router.delete("/outage", summary="Stop every outage")
    async def delete_outage() -> JSONResponse:
        return stop("outage")

    @router.put("/latency", summary="Start added latency (uniform min..max ms)")
    async def put_latency(body: Latency) -> JSONResponse:
        return start(body)

    @router.delete("/latency", summary="Stop every latency fault")
    async def delete_latency() -> JSONResponse:
        return stop("latency")

    @router.put("/error-rate", summary="Start an error rate (probability, statuses)")
    async def put_error_rate(body: ErrorRate) -> JSONResponse:
        return start(body)

    @router.delete("/error-rate", summary="Stop every error-rate fault")
    async def delete_error_rate() -> JSONResponse:
        return stop("error-rate")

    @router.put("/fail-next", summary="Fail the next N matching requests, then succeed")
    async def put_fail_next(body: FailNext) -> JSONResponse:
        return start(body)

    @router.delete("/fail-next", summary="Stop every fail-next fault")
    async def delete_fail_next() -> JSONResponse:
        return stop("fail-next")

    @router.put("/malformed-body", summary="Answer invalid JSON or a body cut short of its Content-Length")
    async def put_malformed_body(body: MalformedBody) -> JSONResponse:
        return start(body)

    @router.delete("/malformed-body", summary="Stop every malformed-body fault")
    async def delete_malformed_body() -> JSONResponse:
        return stop("malformed-body")

    @router.put("/slow-body", summary="Dribble response bodies in chunks over a duration")
    async def put_slow_body(body: SlowBody) -> JSONResponse:
        return start(body)

    @router.delete("/slow-body", summary="Stop every slow-body fault")
    async def delete_slow_body() -> JSONResponse:
        return stop("slow-body")

    @router.get("/faults/{fault_id}", summary="One active fault")
    async def get_fault(fault_id: str = FAULT_ID) -> JSONResponse:
        active = state.get(fault_id)
        if active is None:
            raise _unknown_fault()
        return JSONResponse(active.to_json())

    @router.delete("/faults/{fault_id}", summary="Stop one fault by id")
    async def delete_fault(fault_id: str = FAULT_ID) -> JSONResponse:
        if not state.remove(fault_id):
            raise _unknown_fault()
        logger.info("chaos: %s off", fault_id)
        return answer()

    return router
