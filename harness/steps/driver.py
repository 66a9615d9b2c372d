"""Carry out a scenario's operator steps in a running lab, journaling each (`step.done` / `step.error`).

Vendor-side steps go to the simulator's admin API (directly, never through the proxy, as an operator's
tooling would); integration-side steps act on the integration's own handles (`VendorClient.credentials`,
its breaker). A step that cannot be carried out is a lab failure (`LabError`), as for faults: the verdict
would otherwise describe a run that did not happen.

New credentials are drawn from the run's seeded RNG (`steps.<vendor>` stream), so a replay rotates to the
same secret or key; for Epic the new credential is an ES384 key (derived from RNG material, as
`LabSecrets.generate` does) whose public half the vendor registers in the client's JWKS.

A `manual` step waits for the operator only in a game day (`gameday=True`; `harness.steps.operator`), and
the time it waited is added to `paused_s`, by which the runner shifts the rest of the timeline: the scenario
pauses. Otherwise it is journaled as skipped at once, and `paused_s` stays 0 (a virtual run is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from joserfc.jwk import ECKey

from harness.errors import LabError
from harness.journal import Journal, StepDone, StepFailed
from harness.lab import Lab, VendorRuntime
from harness.rng import RandomSource, random_token
from harness.steps.catalogue import (
    FLAG_STEPS,
    PIPELINE_STEPS,
    AddCredential,
    BreakerCommand,
    CrashWorker,
    DeployCredential,
    Drift,
    EmergencyShutdown,
    ExpireTokens,
    GrantConsent,
    Manual,
    MirrorAudit,
    PauseQueue,
    Reconcile,
    ResumeQueue,
    RetireCredential,
    RetryFailedJobs,
    RevokeConsent,
    RevokeCredential,
    Scalar,
    SetFlag,
    SetRateLimit,
    StagedRecovery,
    StartWorker,
    Step,
)
from harness.steps.operator import OperatorConsole
from harness.vendors import VENDORS
from integrations.fhir.credentials import ClientCredentials, Credential, SigningKeyCredentials, StaticCredentials
from integrations.resilience.errors import UnknownFeatureFlag
from integrations.resilience.recovery import RecoveryPlan, emergency_shutdown


@dataclass
class _Rotation:
    """One vendor's rotation in progress: the vendor's ids for the old and new credentials, and the labels the
    integration knows them by."""

    old_ids: list[str] = field(default_factory=list)
    new_id: str | None = None
    old_label: str = ""
    new_credential: Credential | None = None


class StepDriver:
    def __init__(self, lab: Lab, journal: Journal, sources: RandomSource, *, gameday: bool = False,
                 console: OperatorConsole | None = None) -> None:
        self._lab = lab
        self._journal = journal
        self._sources = sources
        self._rotations: dict[str, _Rotation] = {}
        self._gameday = gameday
        self._console = console
        self.paused_s = 0.0  # scenario seconds the timeline waited for the operator (manual steps)

    async def run(self, step_id: str, step: Step) -> None:
        if isinstance(step, Manual):
            params = await self._manual(step_id, step)  # done when the operator answered (or the wait ended)
            self._journal.add(StepDone(t=self._journal.elapsed(), step_id=step_id, action=step.action,
                                       vendor=step.vendor, params=params))
            return
        vendor = self._lab.vendor(step.vendor)
        try:
            await self._dispatch(vendor, step)
        except (httpx.HTTPError, _StepError, LabError) as exc:
            error = str(exc) if isinstance(exc, _StepError) else type(exc).__name__ + (
                f" {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else "")
            self._journal.add(StepFailed(t=self._journal.elapsed(), step_id=step_id, action=step.action,
                                         vendor=step.vendor, error=error))
            raise LabError(f"could not carry out step {step_id} ({step.label()}): {error}") from exc
        self._journal.add(StepDone(t=self._journal.elapsed(), step_id=step_id, action=step.action,
                                   vendor=step.vendor, params=step.params()))

    async def _manual(self, step_id: str, step: Manual) -> dict[str, Scalar]:
        if not self._gameday:
            return {**step.params(), "waited_s": 0.0, "confirmed": False, "skipped": True}
        if self._console is None:
            self._console = OperatorConsole()
        answer = await self._console.ask(step_id, step.vendor, step.instruction, step.timeout, self._lab.clock)
        self.paused_s += answer.waited_s
        return {**step.params(), "waited_s": answer.waited_s, "confirmed": answer.confirmed,
                "timed_out": answer.outcome == "timed_out"}

    async def _dispatch(self, vendor: VendorRuntime, step: Step) -> None:
        if isinstance(step, PIPELINE_STEPS):
            await self._pipeline_step(step)
        elif isinstance(step, FLAG_STEPS):
            self._flag_step(step)
        elif isinstance(step, AddCredential):
            await self._add_credential(vendor)
        elif isinstance(step, DeployCredential):
            self._deploy(vendor)
        elif isinstance(step, RevokeCredential):
            await self._revoke(vendor, step.which)
        elif isinstance(step, RetireCredential):
            self._retire(vendor, step.which)
        elif isinstance(step, ExpireTokens):
            (await vendor.admin.post("/admin/tokens/expire", json={})).raise_for_status()
        elif isinstance(step, SetRateLimit):
            (await vendor.admin.put(f"/admin/rate-limits/{step.limiter}", json=step.body())).raise_for_status()
        elif isinstance(step, Drift):
            await self._drift(vendor, step)
        elif isinstance(step, BreakerCommand):
            breaker = vendor.client.breaker
            breaker.force_open() if step.command == "force_open" else breaker.reset()

    async def _pipeline_step(self, step: Step) -> None:
        pipeline = self._lab.pipeline
        if pipeline is None:
            raise _StepError("this step needs setup.sync")
        components = pipeline.wired.components
        if isinstance(step, PauseQueue):
            await components.queue.pause()
        elif isinstance(step, ResumeQueue):
            await components.queue.resume()
        elif isinstance(step, GrantConsent):  # before RevokeConsent: it is a subclass
            pipeline.grant(step.patient)
        elif isinstance(step, RevokeConsent):
            pipeline.revoke(step.patient)
        elif isinstance(step, Reconcile):
            assert components.reconciler is not None
            await components.reconciler.run(stale_window_s=step.stale_window)
        elif isinstance(step, CrashWorker):
            await pipeline.crash_worker()
        elif isinstance(step, StartWorker):
            pipeline.start_worker()
        elif isinstance(step, RetryFailedJobs):
            await components.queue.retry_all_failed()
        elif isinstance(step, MirrorAudit):
            assert components.audit_mirror is not None
            await components.audit_mirror.run()

    def _flag_step(self, step: SetFlag | EmergencyShutdown | StagedRecovery) -> None:
        layer = self._lab.resilient.get(step.vendor)
        pipeline = self._lab.pipeline
        if layer is not None:
            flags = layer.flags
        elif pipeline is not None and step.vendor == "medplum":
            flags = pipeline.wired.components.flags
        else:
            raise _StepError(f"{step.vendor} has no feature flags: add it to setup.resilience")
        if isinstance(step, SetFlag):
            try:
                flags.update(step.flag, step.enabled)
            except UnknownFeatureFlag as exc:
                raise _StepError(str(exc)) from exc
        elif isinstance(step, EmergencyShutdown):
            emergency_shutdown(flags, step.vendor)
        else:
            if layer is None:
                raise _StepError("staged_recovery needs the vendor in setup.resilience (its monitor)")
            layer.start_recovery(RecoveryPlan(read_soak_s=step.read_soak, write_soak_s=step.write_soak))

    def _rotation(self, vendor: VendorRuntime) -> _Rotation:
        return self._rotations.setdefault(vendor.name, _Rotation())

    async def _credential_ids(self, vendor: VendorRuntime) -> list[str]:
        response = await vendor.admin.get(f"/admin/clients/{vendor.secrets.client_id}")
        response.raise_for_status()
        return [str(c["id"]) for c in response.json()["credentials"] if c["active"]]

    async def _add_credential(self, vendor: VendorRuntime) -> None:
        rotation = self._rotation(vendor)
        if rotation.new_credential is not None:
            raise _StepError("a new credential was already added for this vendor in this scenario")
        rotation.old_ids = await self._credential_ids(vendor)
        rng = self._sources.stream(f"steps.{vendor.name}")
        material = random_token(rng, 48)
        client_id = vendor.secrets.client_id
        credential: Credential
        if vendor.secrets.signing_key is not None and vendor.name == "epic":
            kid = f"ehrlab-{material[:8]}-2"
            key = ECKey.derive_key(material, "P-384", parameters={"kid": kid, "alg": "ES384", "use": "sig"})
            response = await vendor.admin.post(f"/admin/clients/{client_id}/keys",
                                               json={"jwk": dict(key.as_dict(private=False))})
            credential = SigningKeyCredentials(client_id, key, kid, "ES384", label=f"key {kid}")
            rotation.old_label = f"key {vendor.secrets.key_id}"
        else:
            response = await vendor.admin.post(f"/admin/clients/{client_id}/secrets", json={"secret": material[:40]})
            credential = ClientCredentials(client_id, material[:40], label="lab-secret-2")
            rotation.old_label = "lab-secret-1"
        response.raise_for_status()
        rotation.new_id = str(response.json()["id"])
        rotation.new_credential = credential

    def _deploy(self, vendor: VendorRuntime) -> None:
        rotation = self._rotation(vendor)
        if rotation.new_credential is None:
            # Deploying a credential the vendor never issued is not something an operator can do.
            raise _StepError("deploy_credential needs an add_credential step before it")
        self._source(vendor).deploy(rotation.new_credential)

    async def _revoke(self, vendor: VendorRuntime, which: str) -> None:
        rotation = self._rotation(vendor)
        ids = (rotation.old_ids or await self._credential_ids(vendor)) if which == "old" else (
            [rotation.new_id] if rotation.new_id else [])
        if not ids:
            raise _StepError(f"no {which} credential to revoke")
        for credential_id in ids:
            response = await vendor.admin.delete(f"/admin/clients/{vendor.secrets.client_id}/credentials/"
                                                 f"{credential_id}")
            if response.status_code != 404:  # already revoked: revoked all the same
                response.raise_for_status()

    def _retire(self, vendor: VendorRuntime, which: str) -> None:
        rotation = self._rotation(vendor)
        if which == "new":
            if rotation.new_credential is None:
                raise _StepError("no new credential to retire")
            self._source(vendor).retire(rotation.new_credential.label)
        else:
            label = rotation.old_label or ("key " + vendor.secrets.key_id if vendor.name == "epic" else "lab-secret-1")
            self._source(vendor).retire(label)

    @staticmethod
    def _source(vendor: VendorRuntime) -> StaticCredentials:
        source = vendor.client.credentials
        if source is None:
            raise _StepError("this vendor's client has no deployable credentials")
        return source

    async def _drift(self, vendor: VendorRuntime, step: Drift) -> None:
        if step.patient >= len(vendor.patients):
            raise _StepError(f"patient {step.patient} out of range: {len(vendor.patients)} seeded")
        patient = vendor.patients[step.patient]
        tenant = getattr(VENDORS[vendor.name], "tenant", None)
        query = {"tenant": tenant} if tenant else None
        if step.change == "touch":
            response = await vendor.admin.post(f"/admin/drift/Patient/{patient}/touch", params=query)
        else:
            response = await vendor.admin.post(f"/admin/drift/Patient/{patient}/shift-last-updated", params=query,
                                               json={"seconds": -step.shift})
        response.raise_for_status()


class _StepError(Exception):
    """A step that makes no sense in this run (named in the journal and the lab error)."""
