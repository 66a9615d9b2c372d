"""Start and stop catalogue faults in a running lab, journaling each action.

- Simulator faults are PUT to the target simulator's `/admin/chaos/<endpoint>` and stopped by the id
  it answers (`DELETE /admin/chaos/faults/<id>`), identical in both modes, so overlapping faults of
  one kind on one target each end at their own time.
- Network faults are toxics on the target's link (`VendorRuntime.network`): a Toxiproxy proxy in
  real mode, the in-process emulator in virtual mode; the toxic is named `ehrlab-<fault id>`, so
  overlapping faults of one kind coexist. `proxy_down` disables the link; overlapping `proxy_down`
  windows on one target keep it down until the last of them ends.

Both kinds journal `fault.start` / `fault.stop` with the same fields, and `fault.error` when the
action fails. A fault that cannot be applied is a lab failure (`FaultInjectionError`, a `LabError`): the
scenario is INCONCLUSIVE (exit 3), since a verdict would otherwise describe a fault that never happened.

`fault.start` / `fault.stop` are journaled when the proxy or simulator has answered, so in real mode their
`t` is the measured time the switch took effect (not the planned one), and checks anchored on faults use it;
how late that was against the plan is `harness.lateness`'s `lab.lag`.
"""

from __future__ import annotations

import httpx

from harness.errors import FaultInjectionError
from harness.faults.catalogue import Fault, NetworkFault, ProxyDownFault, SimulatorFault
from harness.journal import FaultFailed, FaultStarted, FaultStopped, Journal
from harness.lab import Lab
from harness.netem import NetworkControlError


def toxic_name(fault_id: str) -> str:
    """The name of the toxic a network fault adds (unique per proxy, like fault ids per scenario)."""
    return f"ehrlab-{fault_id}"


class FaultDriver:
    def __init__(self, lab: Lab, journal: Journal) -> None:
        self._lab = lab
        self._journal = journal
        self.active: dict[str, Fault] = {}
        self._down: dict[str, set[str]] = {}  # target -> ids of the proxy_down faults holding it down
        self._chaos_ids: dict[str, str] = {}  # scenario fault id -> the simulator's id for it
        self.landed_at: float | None = None  # scenario time of the last fault.start / fault.stop journaled

    async def start(self, fault_id: str, fault: Fault) -> None:
        await self._call(fault_id, fault, "start")
        self.active[fault_id] = fault
        self.landed_at = self._journal.elapsed()
        self._journal.add(FaultStarted(t=self.landed_at, fault_id=fault_id, fault=fault.kind,
                                       target=fault.target, params=fault.params(), name=fault.label(),
                                       background=fault.background))

    async def stop(self, fault_id: str) -> None:
        fault = self.active.pop(fault_id, None)
        if fault is None:
            return
        await self._call(fault_id, fault, "stop")
        self.landed_at = self._journal.elapsed()
        self._journal.add(FaultStopped(t=self.landed_at, fault_id=fault_id, fault=fault.kind,
                                       target=fault.target, name=fault.label(), background=fault.background))

    async def stop_all(self) -> None:
        for fault_id in list(self.active):
            await self.stop(fault_id)

    async def _call(self, fault_id: str, fault: Fault, action: str) -> None:
        try:
            if isinstance(fault, NetworkFault):
                await self._toxic(fault_id, fault, action)
            elif isinstance(fault, ProxyDownFault):
                await self._proxy_down(fault_id, fault, action)
            else:
                await self._chaos(fault_id, fault, action)
        except (httpx.HTTPError, NetworkControlError) as exc:
            error = f"{exc.__class__.__name__}" + (
                f" {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else "")
            if isinstance(exc, NetworkControlError):
                error = f"{error}: {exc}"
            self._journal.add(FaultFailed(t=self._journal.elapsed(), fault_id=fault_id, fault=fault.kind,
                                          target=fault.target, action="start" if action == "start" else "stop",
                                          error=error))
            raise FaultInjectionError(f"could not {action} fault {fault_id} ({fault.label()}): {error}") from exc

    async def _chaos(self, fault_id: str, fault: SimulatorFault, action: str) -> None:
        """Start a simulator fault, or stop exactly the one started for `fault_id` (overlapping faults of
        the same kind on one target each end at their own time)."""
        admin = self._lab.vendor(fault.target).admin
        if action == "start":
            response = await admin.put(f"/admin/chaos/{fault.chaos_endpoint()}", json=fault.request_body())
            response.raise_for_status()
            self._chaos_ids[fault_id] = str(response.json()["id"])
            return
        chaos_id = self._chaos_ids.pop(fault_id, None)
        if chaos_id is None:
            return
        try:
            response = await admin.delete(f"/admin/chaos/faults/{chaos_id}")
        except httpx.TransportError:
            # A kept-alive connection the simulator closed just as it was reused (uvicorn drops idle ones after
            # 5 s): the request never arrived. Deleting a fault by its id is idempotent, so send it once more.
            response = await admin.delete(f"/admin/chaos/faults/{chaos_id}")
        if response.status_code != 404:  # gone already (the simulator was reset): stopped all the same
            response.raise_for_status()

    async def _toxic(self, fault_id: str, fault: NetworkFault, action: str) -> None:
        network = self._lab.vendor(fault.target).network
        if action == "start":
            await network.add_toxic(fault.toxic(toxic_name(fault_id)))
        else:
            await network.remove_toxic(toxic_name(fault_id))

    async def _proxy_down(self, fault_id: str, fault: ProxyDownFault, action: str) -> None:
        holders = self._down.setdefault(fault.target, set())
        network = self._lab.vendor(fault.target).network
        if action == "start":
            if not holders:
                await network.set_enabled(False)
            holders.add(fault_id)
        else:
            holders.discard(fault_id)
            if not holders:
                await network.set_enabled(True)
