"""Operator steps a scenario schedules: what a person (or a deploy pipeline) does during an incident or a
change, as typed models (a union on `action`). `harness.steps.driver` carries them out.

| action              | what it does                                                        | runbook |
|---------------------|---------------------------------------------------------------------|---------|
| `add_credential`    | the vendor registers a new credential for the lab's client (a new   | 000 §1  |
|                     | secret; for Epic a new signing key in the JWKS); the old one stays  |         |
| `deploy_credential` | the integration is given that new credential, offered first, the    | 000 §1  |
|                     | old one kept as the fallback (no restart)                           |         |
| `revoke_credential` | the vendor revokes the `old` (or `new`) credential                  | 000 §1  |
| `retire_credential` | the integration stops offering the `old` (or `new`) credential      | 002 §10.2 |
| `expire_tokens`     | the vendor forces every access token to expire now                  | 002 §2.1 |
| `set_rate_limit`    | the vendor's named rate limiter gets a new limit / window            | 004     |
| `drift`             | a seeded patient is changed behind the integration's back           | 002 §7.2 |
|                     | (`touch`: new version, same content; `shift_last_updated`)           |         |
| `breaker`           | an operator forces the integration's breaker `open`, or `reset`s it | 000 §8  |
| `manual`            | a person does what the lab cannot (`instruction`): a game day waits | 001     |
|                     | for Enter (up to `timeout`); CI and virtual runs journal it skipped  |         |

On the sync pipeline (`setup.sync`; `harness.pipeline`): `pause_queue` / `resume_queue` (002 §7.3),
`revoke_consent` / `grant_consent` (002 §3.1), `reconcile` (002 §2.4), `crash_worker` / `start_worker`
(002 §2.2 stalled jobs), `retry_failed_jobs` (002 §7.2), `mirror_audit` (002 §2.6).
On a vendor's feature flags (`setup.resilience`, or Medplum with `setup.sync`): `set_flag`,
`emergency_shutdown`, `staged_recovery` (000 §3, §8).

Rotation done right (000_030ea53f0735abf7.txt §1, 002_437ee203264dfa64.txt §10.2) is add, deploy,
verify, revoke old, retire old; done wrong, the old one is revoked before the new one is deployed.
No step's journal entry carries a credential: secrets and keys are drawn from the run's seeded RNG and
named only as `old` / `new`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.durations import Duration
from harness.names import VendorName

Scalar = str | int | float | bool | None
Which = Literal["old", "new"]


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(description="when the step is taken, from the scenario start")
    vendor: VendorName
    name: str | None = Field(default=None, description="a label for reports; defaults to action@vendor")

    def label(self) -> str:
        return self.name or f"{self.action}@{self.vendor}"  # type: ignore[attr-defined]

    def params(self) -> dict[str, Scalar]:
        """The step's own parameters, for the journal (never a secret)."""
        return {}


class AddCredential(StepBase):
    action: Literal["add_credential"]


class DeployCredential(StepBase):
    action: Literal["deploy_credential"]


class RevokeCredential(StepBase):
    action: Literal["revoke_credential"]
    which: Which = "old"

    def params(self) -> dict[str, Scalar]:
        return {"which": self.which}


class RetireCredential(StepBase):
    action: Literal["retire_credential"]
    which: Which = "old"

    def params(self) -> dict[str, Scalar]:
        return {"which": self.which}


class ExpireTokens(StepBase):
    action: Literal["expire_tokens"]


class SetRateLimit(StepBase):
    """`limiter` is the simulator's limiter name (`GET /admin/rate-limits`): `requests` for Epic, Cerner and
    Allscripts; `fhir_user`, `fhir_project`, `requests`, `auth` for Medplum."""

    action: Literal["set_rate_limit"]
    limiter: str = Field(default="requests", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    limit: int | None = Field(default=None, ge=0, le=1_000_000_000)
    window: Duration | None = Field(default=None, gt=0)
    enabled: bool | None = None

    def params(self) -> dict[str, Scalar]:
        return {"limiter": self.limiter, "limit": self.limit, "window_s": self.window, "enabled": self.enabled}

    def body(self) -> dict[str, Scalar]:
        body: dict[str, Scalar] = {"limit": self.limit, "window_s": self.window, "enabled": self.enabled}
        return {k: v for k, v in body.items() if v is not None}


class Drift(StepBase):
    """Change the `patient`-th seeded patient (0-based, in seeding order) behind the integration's back."""

    action: Literal["drift"]
    change: Literal["touch", "shift_last_updated"] = "touch"
    patient: int = Field(default=0, ge=0)
    shift: Duration = Field(default=3600.0, description="shift_last_updated: how far back")

    def params(self) -> dict[str, Scalar]:
        return {"change": self.change, "patient": self.patient}


class BreakerCommand(StepBase):
    action: Literal["breaker"]
    command: Literal["force_open", "reset"]

    def params(self) -> dict[str, Scalar]:
        return {"command": self.command}


class PipelineStep(StepBase):
    """A step on the sync pipeline (`setup.sync`), which syncs to Medplum: `vendor` is medplum."""

    vendor: VendorName = "medplum"


class PauseQueue(PipelineStep):
    """Queue-wide pause: active jobs finish, none start (002 §7.3 planned maintenance, §7.2 scenario 3)."""

    action: Literal["pause_queue"]


class ResumeQueue(PipelineStep):
    action: Literal["resume_queue"]


class RevokeConsent(PipelineStep):
    """The `patient`-th seeded patient token revokes their CARE consent (002 §3.1): blocks at once."""

    action: Literal["revoke_consent"]
    patient: int = Field(default=0, ge=0)

    def params(self) -> dict[str, Scalar]:
        return {"patient": self.patient}


class GrantConsent(RevokeConsent):
    action: Literal["grant_consent"]  # type: ignore[assignment]


class Reconcile(PipelineStep):
    """Run reconciliation once (002 §2.4): never-synced and stale records found and enqueued."""

    action: Literal["reconcile"]
    stale_window: Duration = Field(default=86_400.0, ge=0, description="updated_at > last_synced_at + this")

    def params(self) -> dict[str, Scalar]:
        return {"stale_window_s": self.stale_window}


class CrashWorker(PipelineStep):
    """The sync worker dies mid-job (a SIGKILL): its jobs come back when their locks expire (002 §2.2)."""

    action: Literal["crash_worker"]


class StartWorker(PipelineStep):
    action: Literal["start_worker"]


class FlagStep(StepBase):
    """A step on a vendor's feature flags: the vendor's resilience layer (`setup.resilience`), or for
    Medplum the sync pipeline's (`setup.sync`)."""


class SetFlag(FlagStep):
    """Set one of the vendor's feature flags, `<vendor>_fhir_write` or `<vendor>_fhir_read_only` (000 §3, §8;
    with the sync pipeline, Medplum writes off means records are stored, not synced)."""

    action: Literal["set_flag"]
    flag: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    enabled: bool

    def params(self) -> dict[str, Scalar]:
        return {"flag": self.flag, "enabled": self.enabled}


class EmergencyShutdown(FlagStep):
    """000 §8 "Disable All Epic Features", for `vendor`: reads and writes off in one batch."""

    action: Literal["emergency_shutdown"]


class StagedRecovery(FlagStep):
    """000 §8 "Recovery from Emergency Shutdown", started in the background: verify connectivity, reads on,
    healthy for `read_soak` (15 min), writes on, healthy for `write_soak` (30 min); back off at UNHEALTHY."""

    action: Literal["staged_recovery"]
    read_soak: Duration = Field(default=900.0, ge=0)
    write_soak: Duration = Field(default=1800.0, ge=0)

    def params(self) -> dict[str, Scalar]:
        return {"read_soak_s": self.read_soak, "write_soak_s": self.write_soak}


class RetryFailedJobs(PipelineStep):
    """Retry every failed job (002 §7.2 scenario 1, `/fhir/admin/queue/retry`), after the cause is fixed."""

    action: Literal["retry_failed_jobs"]


class MirrorAudit(PipelineStep):
    """Run the audit mirror once (002 §2.6): Medplum's AuditEvents since the last run, de-duplicated."""

    action: Literal["mirror_audit"]


class Manual(StepBase):
    """A step only a person can take (check a vendor's status page, call the on-call): in a game day
    (`ehrlab run --mode real --gameday`) the timeline pauses, the instruction is printed, and the run goes on
    when the operator presses Enter or after `timeout` of scenario time; elsewhere (CI, virtual) it is
    journaled as skipped at once, so the same file runs unattended."""

    action: Literal["manual"]
    instruction: str = Field(min_length=1, max_length=500, description="what the operator is asked to do")
    timeout: Duration = Field(default=600.0, gt=0, description="how long a game day waits for the operator")

    def params(self) -> dict[str, Scalar]:
        return {"instruction": self.instruction}


PIPELINE_STEPS = (PauseQueue, ResumeQueue, RevokeConsent, GrantConsent, Reconcile, CrashWorker, StartWorker,
                  RetryFailedJobs, MirrorAudit)
FLAG_STEPS = (SetFlag, EmergencyShutdown, StagedRecovery)

Step = Annotated[
    AddCredential | DeployCredential | RevokeCredential | RetireCredential | ExpireTokens | SetRateLimit | Drift
    | BreakerCommand | PauseQueue | ResumeQueue | RevokeConsent | GrantConsent | Reconcile | CrashWorker | StartWorker
    | SetFlag | EmergencyShutdown | StagedRecovery | RetryFailedJobs | MirrorAudit | Manual,
    Field(discriminator="action"),
]
