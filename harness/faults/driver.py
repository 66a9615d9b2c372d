"""Start and stop catalogue faults in a running lab, journaling each action.

Simulator faults are PUT to (and DELETEd from) the target simulator's `/admin/chaos/<endpoint>`,
identical in both modes. A fault that cannot be applied is a lab failure: the run's verdict would
otherwise describe a fault that never happened.
"""

from __future__ import annotations

import httpx

from harness.errors import LabError
from harness.faults.catalogue import Fault
from harness.journal import FaultFailed, FaultStarted, FaultStopped, Journal
from harness.lab import Lab


class FaultDriver:
    def __init__(self, lab: Lab, journal: Journal) -> None:
        self._lab = lab
        self._journal = journal
        self.active: dict[str, Fault] = {}

    async def start(self, fault_id: str, fault: Fault) -> None:
        await self._call(fault_id, fault, "start")
        self.active[fault_id] = fault
        self._journal.add(FaultStarted(t=self._journal.elapsed(), fault_id=fault_id, fault=fault.kind,
                                       target=fault.target, params=fault.params()))

    async def stop(self, fault_id: str) -> None:
        fault = self.active.pop(fault_id, None)
        if fault is None:
            return
        await self._call(fault_id, fault, "stop")
        self._journal.add(FaultStopped(t=self._journal.elapsed(), fault_id=fault_id, fault=fault.kind,
                                       target=fault.target))

    async def stop_all(self) -> None:
        for fault_id in list(self.active):
            await self.stop(fault_id)

    async def _call(self, fault_id: str, fault: Fault, action: str) -> None:
        admin = self._lab.vendor(fault.target).admin
        path = f"/admin/chaos/{fault.chaos_endpoint()}"
        try:
            if action == "start":
                response = await admin.put(path, json=fault.chaos_body())
            else:
                response = await admin.delete(path)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            error = f"{exc.__class__.__name__}" + (
                f" {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else "")
            self._journal.add(FaultFailed(t=self._journal.elapsed(), fault_id=fault_id, fault=fault.kind,
                                          target=fault.target, action="start" if action == "start" else "stop",
                                          error=error))
            raise LabError(f"could not {action} fault {fault_id} ({fault.label()}): {error}") from exc
