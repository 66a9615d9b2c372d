"""Emergency shutdown and staged recovery as flag changes (runbook `000_030ea53f0735abf7.txt §8`).

`emergency_shutdown(flags, vendor)` is §8 "Complete Epic Shutdown": one batch update turning the
vendor's read and write flags off (reads then come only from the cached context).

`staged_recovery(flags, monitor, clock)` is §8 "Recovery from Emergency Shutdown":

1. "Verify Epic connectivity restored": one health check must pass (without a probe: the monitor's
   status must be better than `abort_on`); otherwise no flag changes.
2. "Re-enable read operations first", 3. "Monitor for 15 minutes" (`RecoveryPlan.read_soak_s`).
4. "Re-enable write operations", 5. "Monitor for 30 minutes" (`write_soak_s`).

While soaking, the monitor's status is read every `poll_s` (running a health check each time if its
periodic checks are not running); if it reaches `abort_on` (UNHEALTHY by default), the flag just
turned on is turned off again and the recovery stops there. Every flag change is a
`FeatureFlagChanged` event; all waiting is on the injected clock, so a 45-minute recovery runs in
milliseconds of virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from integrations.clock import Clock
from integrations.events import HealthStatus
from integrations.resilience.flags import FeatureFlags, FlagUpdate, read_flag, write_flag
from integrations.resilience.monitor import ProviderMonitor, worst


def emergency_shutdown(flags: FeatureFlags, vendor: str) -> None:
    """Turn the vendor's reads and writes off in one batch (runbook 000 §8 "Disable All Epic Features")."""
    flags.update_many([FlagUpdate(read_flag(vendor), False), FlagUpdate(write_flag(vendor), False)])


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    read_soak_s: float = 900.0  # runbook 000 §8 step 3: "Monitor for 15 minutes"
    write_soak_s: float = 1800.0  # runbook 000 §8 step 5: "Monitor for 30 minutes"
    poll_s: float = 30.0
    abort_on: HealthStatus = HealthStatus.UNHEALTHY

    def __post_init__(self) -> None:
        if self.read_soak_s < 0 or self.write_soak_s < 0 or self.poll_s <= 0:
            raise ValueError("soak times must not be negative and poll_s must be positive")


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """`stage`: where the recovery stopped ("done" when both flags are back on)."""

    completed: bool
    stage: Literal["verify", "reads", "writes", "done"]
    elapsed_s: float
    health: HealthStatus


async def staged_recovery(flags: FeatureFlags, monitor: ProviderMonitor, clock: Clock,
                          plan: RecoveryPlan | None = None) -> RecoveryOutcome:
    """Reads first, then writes, each after a healthy soak; see the module docstring."""
    plan = plan if plan is not None else RecoveryPlan()
    vendor = monitor.vendor
    started = clock.monotonic()

    def outcome(stage: Literal["verify", "reads", "writes", "done"]) -> RecoveryOutcome:
        return RecoveryOutcome(completed=stage == "done", stage=stage, elapsed_s=clock.monotonic() - started,
                               health=monitor.health)

    verified = (await monitor.check_health()).ok if monitor.has_probe else True
    if not verified or _reached(monitor.health, plan.abort_on):
        return outcome("verify")
    for stage, flag, soak_s in (("reads", read_flag(vendor), plan.read_soak_s),
                                ("writes", write_flag(vendor), plan.write_soak_s)):
        flags.update(flag, True)
        if not await _soak(monitor, clock, soak_s, plan):
            flags.update(flag, False)
            return outcome("reads" if stage == "reads" else "writes")
    return outcome("done")


async def _soak(monitor: ProviderMonitor, clock: Clock, duration_s: float, plan: RecoveryPlan) -> bool:
    deadline = clock.monotonic() + duration_s
    while True:
        if _reached(monitor.health, plan.abort_on):
            return False
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return True
        await clock.sleep(min(plan.poll_s, remaining))
        if monitor.has_probe and not monitor.running:
            await monitor.check_health()


def _reached(health: HealthStatus, threshold: HealthStatus) -> bool:
    return worst(health, threshold) is health
