"""The sync pipeline in the lab: the integration service's components (runbook 002_437ee203264dfa64.txt
§2.2-§2.6, §3) wired to the lab's Medplum, for scenarios about the queue, consent, reconciliation and the
audit mirror.

A scenario asks for it with `setup.sync`; the lab then wires `harness.service_cmd.wire_service` (the one
wiring path the `ehrlab service` command uses too) against its Medplum runtime, on the lab's clock and the
lab's transport (virtual: in process behind the network emulator; real: through the vendor's proxy), with
the lab's own Medplum client (one breaker per vendor), an application database and a SQLite queue in a
temporary folder, and every integration event in the journal. It seeds `patients` patient tokens in one
organisation, each with a CARE consent for every exported data class.

Workload operations (`record_encounter`, `record_observation`, `export_patient`) and operator steps
(`pause_queue`, `resume_queue`, `revoke_consent`, `grant_consent`, `reconcile`, `crash_worker`,
`start_worker`, `set_flag`, `emergency_shutdown`, `mirror_audit`) act on it through `Pipeline`.
"""

from __future__ import annotations

import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabError
from harness.journal import PhiScanEvent
from harness.rng import RandomSource, random_token
from harness.scenario.model import SyncSetup
from harness.service_cmd import ServiceSecrets, Wired, wire_service
from integrations.clock import Clock
from integrations.events import EventListener
from integrations.queue import Worker, WorkerOptions
from integrations.resilience.recovery import emergency_shutdown
from integrations.sync import EXPORT_DATA_CLASSES
from integrations.sync.deid import patient_fhir_id, phi_violations

ORG = "org_lab"


@dataclass
class Pipeline:
    wired: Wired
    tokens: list[str]
    org: str
    _sources: RandomSource
    _options: WorkerOptions
    _restarts: int = 0

    @property
    def worker(self) -> Worker | None:
        return self.wired.worker

    async def crash_worker(self) -> None:
        """The worker process dies: running jobs are abandoned with their locks held (a SIGKILL), so they come
        back only when the locks expire and a worker's stalled-job check takes them (002 §2.2)."""
        worker = self.wired.worker
        if worker is None:
            raise LabError("crash_worker: no worker is running")
        self.wired.worker = None
        await worker.close(timeout_s=0.0)

    def start_worker(self) -> None:
        if self.wired.worker is not None:
            raise LabError("start_worker: a worker is already running")
        self._restarts += 1
        worker = Worker(self.wired.components.queue, self.wired.sync.handlers(), options=self._options,
                        rng=self._sources.stream(f"pipeline.worker.{self._restarts}"))
        worker.start()
        self.wired.worker = worker

    def emergency_shutdown(self) -> None:
        emergency_shutdown(self.wired.components.flags, "medplum")

    def revoke(self, patient: int) -> None:
        self.wired.consents.revoke(self.token(patient), self.org)

    def grant(self, patient: int) -> None:
        self.wired.consents.grant(self.token(patient), self.org, EXPORT_DATA_CLASSES)

    def token(self, patient: int) -> str:
        if patient >= len(self.tokens):
            raise LabError(f"patient {patient} out of range: setup.sync seeded {len(self.tokens)}")
        return self.tokens[patient]

    def phi_scan(self, medplum: object) -> list[PhiScanEvent]:
        """What Medplum holds for the pipeline's patients, judged for PHI (no PHI leaves for Medplum, 002 §3.2):
        each patient's Patient resource by `phi_violations`. Read from the simulator's store, not over HTTP, so
        the scan adds no traffic to the journal; element names only."""
        from harness.lab import VendorRuntime
        from simulators.medplum import MedplumSimulator

        if not isinstance(medplum, VendorRuntime) or not isinstance(medplum.simulator, MedplumSimulator):
            raise TypeError("phi_scan needs the lab's Medplum runtime")
        store = medplum.simulator.store
        found = []
        for token in self.tokens:
            fhir_id = patient_fhir_id(token)
            if not store.exists("Patient", fhir_id):
                continue  # never synced: nothing left for Medplum
            patient = store.read("Patient", fhir_id)
            found.append(PhiScanEvent(t=0.0, vendor="medplum", resource_type="Patient", resource_id=fhir_id,
                                      correlation_id=None, phi_elements=tuple(phi_violations(patient))))
        return found

    async def close(self) -> None:
        if self.wired.worker is not None:
            await self.wired.worker.close(5.0)
            self.wired.worker = None


async def start_pipeline(stack: AsyncExitStack, setup: SyncSetup, *, clock: Clock, sources: RandomSource,
                         medplum: object, listener: EventListener) -> Pipeline:
    """Wire and start the pipeline on the lab's Medplum runtime (`harness.lab.VendorRuntime`)."""
    from harness.lab import VendorRuntime

    if not isinstance(medplum, VendorRuntime):
        raise TypeError("medplum must be the lab's VendorRuntime")
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ehrlab-pipeline-")))
    rng = sources.stream("pipeline.secrets")
    service_secrets = ServiceSecrets(*(random_token(rng, 32) for _ in range(3)))
    options = WorkerOptions(concurrency=setup.concurrency)
    wired = await stack.enter_async_context(wire_service(
        clock=clock, sources=sources, medplum_url=medplum.proxy_url, lab_secrets=medplum.secrets,
        transport=medplum.transport, db_path=folder / "app.db", service_secrets=service_secrets,
        listener=listener, start_monitor=setup.monitor, worker_options=options, vendor_client=medplum.client))
    tokens_rng = sources.stream("pipeline.patients")
    tokens = []
    for _ in range(setup.patients):
        token = "pt_" + random_token(tokens_rng, 10)
        wired.store.add_patient_token(token, ORG, f"s3://ehrlab-lab/{token}.enc")
        wired.consents.grant(token, ORG, EXPORT_DATA_CLASSES)
        tokens.append(token)
    pipeline = Pipeline(wired=wired, tokens=tokens, org=ORG, _sources=sources, _options=options)
    stack.push_async_callback(pipeline.close)
    return pipeline
