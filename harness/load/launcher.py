"""The load run's server process: simulators (and the integration service) on loopback, and a fault timeline.

Run by `ehrlab load` as `python -m harness.load.launcher CONFIG_JSON` (its own process, so the parent can
sample its memory and locust never shares a process with the lab). It builds a real-mode `Lab` (each
simulator on an ephemeral 127.0.0.1 port with a Toxiproxy proxy in front), turns the simulators' rate
limits off unless told to keep them (a load run measures throughput, not Medplum's quota), wires the
integration service against the lab's Medplum when the profile needs it, then writes `ready.json` in the
report directory with the locustfiles' `EHRLAB_*` environment (secrets: the report directory is the
operator's, like `ehrlab serve`'s printout) and its pid. On the line `start` on stdin it plays the
fault scenario's timeline (each fault's `at` and `for` from that moment, by `harness.faults.driver`, the
scenario runner's own driver); on end of stdin it stops every fault and exits. Fault events go to
`faults.jsonl` in the report directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.clock import RealClock
from harness.faults.catalogue import Fault, NetworkFault, ProxyDownFault
from harness.faults.driver import FaultDriver
from harness.journal import Journal
from harness.lab import Lab
from harness.rng import RandomSource
from harness.scenario.loader import load_scenario
from harness.shutdown import run_until_stopped
from integrations.events import ignore_event

VENDOR = "medplum"  # the simulator the direct profiles drive (the service's vendor too)


@dataclass(frozen=True, slots=True)
class LauncherConfig:
    seed: int
    vendor: bool
    service: bool
    report_dir: str
    fault_scenario: str | None = None
    keep_rate_limits: bool = False
    patients: int = 20
    allow_remote: bool = False  # `ehrlab load --allow-remote`: the guard already passed in the parent

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def from_json(cls, text: str) -> LauncherConfig:
        return cls(**json.loads(text))


def load_faults(path: str | None) -> list[Fault]:
    """The faults of a scenario file (validated as any scenario; its workload and checks are not used)."""
    return [] if path is None else list(load_scenario(Path(path)).faults)


async def _lift_rate_limits(lab: Lab) -> None:
    for runtime in lab.vendors.values():
        limits = await runtime.admin.get("/admin/rate-limits")
        if limits.status_code != 200:
            continue
        for name in limits.json():
            (await runtime.admin.put(f"/admin/rate-limits/{name}", json={"enabled": False})).raise_for_status()


async def _timeline(driver: FaultDriver, faults: list[Fault], clock: RealClock) -> None:
    ids = {f"{i + 1}-{fault.kind}": fault for i, fault in enumerate(faults)}
    moments = sorted([(f.at, 1, fid) for fid, f in ids.items()] +
                     [(f.at + f.for_, 0, fid) for fid, f in ids.items() if f.for_ is not None])
    origin = clock.monotonic()
    for at, starting, fault_id in moments:
        await clock.sleep(at - (clock.monotonic() - origin))
        if starting:
            await driver.start(fault_id, ids[fault_id])
        else:
            await driver.stop(fault_id)


def _write(path: Path, text: str) -> None:
    """Whole or absent (the parent polls for ready.json): write beside, then rename."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


async def _read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def serve_load(config: LauncherConfig) -> None:
    clock = RealClock()
    sources = RandomSource(config.seed)
    faults = load_faults(config.fault_scenario)
    vendors = list(dict.fromkeys([VENDOR, *(f.target for f in faults)]))
    via_proxy = any(isinstance(f, NetworkFault | ProxyDownFault) for f in faults)
    journal = Journal(clock)
    async with AsyncExitStack() as stack:
        lab = await stack.enter_async_context(Lab(mode="real", clock=clock, sources=sources, vendors=vendors,
                                                  patients=config.patients, listener=ignore_event,
                                                  allow_remote=config.allow_remote))
        if not config.keep_rate_limits:
            await _lift_rate_limits(lab)
        medplum = lab.vendor(VENDOR)
        url = medplum.proxy_url if via_proxy else medplum.base_url
        env = {"EHRLAB_FHIR_URL": url, "EHRLAB_FHIR_PATH": "/fhir/R4", "EHRLAB_TOKEN_PATH": "/oauth2/token",
               "EHRLAB_CLIENT_ID": medplum.secrets.client_id, "EHRLAB_CLIENT_SECRET": medplum.secrets.client_secret,
               "EHRLAB_PATIENT_IDS": ",".join(medplum.patients)}
        if config.service:
            env |= await _start_service(stack, lab, sources)
        driver = FaultDriver(lab, journal)
        _write(Path(config.report_dir, "ready.json"), json.dumps({"env": env, "pid": os.getpid(), "vendors": vendors,
                                                                 "via_proxy": via_proxy}))
        print(f"serving {', '.join(vendors)} for a load run (pid {os.getpid()})", flush=True)
        timeline: asyncio.Task[None] | None = None
        try:
            while line := await _read_line():
                if line.strip() == "start" and timeline is None:
                    journal.restart()
                    timeline = asyncio.create_task(_timeline(driver, faults, clock))
            if timeline is not None:
                timeline.cancel()
                await asyncio.gather(timeline, return_exceptions=True)
        finally:
            try:
                await driver.stop_all()
            finally:  # the fault journal, fault.error included, even when a fault could not be stopped
                _write(Path(config.report_dir, "faults.jsonl"), "".join(f"{line}\n" for line in journal.lines()))


async def _start_service(stack: AsyncExitStack, lab: Lab, sources: RandomSource) -> dict[str, str]:
    from harness.service_cmd import DEMO_ORG, ServiceSecrets, seed_demo, wire_service
    from simulators.server import serve

    medplum = lab.vendor(VENDOR)
    db_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ehrlab-load-"))) / "app.db"
    secrets = ServiceSecrets.generate()
    wired = await stack.enter_async_context(wire_service(
        clock=lab.clock, sources=sources, medplum_url=medplum.proxy_url, lab_secrets=medplum.secrets,
        transport=medplum.transport, db_path=db_path, service_secrets=secrets, vendor_client=medplum.client))
    url = await stack.enter_async_context(serve(wired.app))
    tokens = await seed_demo(wired, sources.stream("service.demo"))
    return {"EHRLAB_SERVICE_URL": url, "EHRLAB_SERVICE_API_KEY": secrets.api_key, "EHRLAB_SERVICE_ORG": DEMO_ORG,
            "EHRLAB_SERVICE_OPERATOR_TOKEN": secrets.operator_token, "EHRLAB_SERVICE_PATIENTS": ",".join(tokens)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Ctrl-C or SIGTERM (`ehrlab load` ending it): faults stopped, faults.jsonl written, the service's temporary
    # database removed, then 130
    return 130 if run_until_stopped(serve_load(LauncherConfig.from_json(args[0]))) is not None else 0


if __name__ == "__main__":
    sys.exit(main())
