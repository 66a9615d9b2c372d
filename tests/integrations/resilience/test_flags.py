"""Feature flags (runbook 000_030ea53f0735abf7.txt §3, §8): writes refused while the write flag is off,
per-user overrides, batch updates, emergency shutdown and staged recovery (reads first, then writes)
as flag changes, every change an event that names users only by pseudonym."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import FeatureFlagChanged, HealthStatus, IntegrationEvent
from integrations.fhir import ServerError
from integrations.resilience import (
    FeatureFlags,
    FlagUpdate,
    MonitorConfig,
    ProviderMonitor,
    RecoveryPlan,
    UnknownFeatureFlag,
    WritesDisabled,
    emergency_shutdown,
    read_flag,
    staged_recovery,
    user_ref,
    write_flag,
)
from tests.integrations.resilience.support import make_rig

OBSERVATION = {"resourceType": "Observation", "status": "final"}


def test_every_vendor_gets_the_runbooks_flag_names() -> None:
    flags = FeatureFlags.for_vendors(["epic", "cerner"])
    assert flags.snapshot() == {"cerner_fhir_read_only": True, "cerner_fhir_write": True,
                                "epic_fhir_read_only": True, "epic_fhir_write": True}
    assert (write_flag("epic"), read_flag("epic")) == ("epic_fhir_write", "epic_fhir_read_only")


def test_writes_are_refused_while_the_write_flag_is_off_and_nothing_is_sent() -> None:
    async def main() -> tuple[WritesDisabled, int, str, str, str]:
        rig = make_rig()
        rig.flags.update("fake_fhir_write", False)
        sent = len(rig.vendor.requests)
        with pytest.raises(WritesDisabled) as refused:
            await rig.client.create(OBSERVATION)
        with pytest.raises(WritesDisabled):
            await rig.client.update({"resourceType": "Patient", "id": "p1"}, if_match="1")
        nothing = len(rig.vendor.requests) - sent
        rig.flags.set_user_override("dr-house", "fake_fhir_write", True)  # runbook 000 §3 per-user override
        created = await rig.client.create(OBSERVATION, user="dr-house")
        with pytest.raises(WritesDisabled):
            await rig.client.create(OBSERVATION, user="dr-wilson")
        rig.flags.update("fake_fhir_write", True)
        updated = await rig.client.update({"resourceType": "Patient", "id": "p1"}, if_match="1")
        cached = await rig.client.read("Patient", "p1")  # the write refreshed the cached context
        await rig.close()
        return refused.value, nothing, created.id, updated.version_id or "", cached.value.version_id or ""

    refused, nothing, created, updated, cached = run_virtual(main)
    assert nothing == 0
    assert refused.flag == "fake_fhir_write"
    assert not refused.retryable
    assert "fake_fhir_write" in str(refused)
    assert (created, updated, cached) == ("new1", "2", "1")


def test_user_overrides_win_both_ways_and_can_be_cleared() -> None:
    events: list[IntegrationEvent] = []
    flags = FeatureFlags.for_vendors(["epic"], listener=events.append)
    flags.update("epic_fhir_write", False)
    flags.set_user_override("user_123", "epic_fhir_write", True)
    flags.set_user_override("user_123", "epic_fhir_write", True)  # no change: no event
    flags.set_user_override("user_456", "epic_fhir_read_only", False)
    assert flags.is_enabled("epic_fhir_write", "user_123")
    assert not flags.is_enabled("epic_fhir_write")
    assert not flags.is_enabled("epic_fhir_write", "user_456")
    assert not flags.is_enabled("epic_fhir_read_only", "user_456")
    assert flags.is_enabled("epic_fhir_read_only")
    assert flags.override_count("epic_fhir_write") == 1
    flags.clear_user_override("user_123", "epic_fhir_write")
    flags.clear_user_override("user_123", "epic_fhir_write")  # nothing to clear: no event
    assert not flags.is_enabled("epic_fhir_write", "user_123")
    assert [(e.flag, e.enabled, e.previous, e.scope, e.user_ref) for e in events  # type: ignore[union-attr]
            ] == [("epic_fhir_write", False, True, "global", None),
                  ("epic_fhir_write", True, None, "user", user_ref("user_123")),
                  ("epic_fhir_read_only", False, None, "user", user_ref("user_456")),
                  ("epic_fhir_write", None, True, "user", user_ref("user_123"))]
    assert "user_123" not in repr(events) + repr(flags)


def test_batch_update_is_all_or_nothing() -> None:
    events: list[IntegrationEvent] = []
    flags = FeatureFlags.for_vendors(["epic"], listener=events.append)
    with pytest.raises(UnknownFeatureFlag, match="epic_fhir_writes"):
        flags.update_many([FlagUpdate("epic_fhir_read_only", False), FlagUpdate("epic_fhir_writes", False)])
    with pytest.raises(ValueError, match="twice"):
        flags.update_many([FlagUpdate("epic_fhir_write", False), FlagUpdate("epic_fhir_write", True)])
    assert flags.snapshot() == {"epic_fhir_read_only": True, "epic_fhir_write": True}
    assert events == []
    emergency_shutdown(flags, "epic")  # runbook 000 §8 "Complete Epic Shutdown": one batch
    assert flags.snapshot() == {"epic_fhir_read_only": False, "epic_fhir_write": False}
    assert [(e.flag, e.enabled, e.batch_size) for e in events] == [  # type: ignore[union-attr]
        ("epic_fhir_read_only", False, 2), ("epic_fhir_write", False, 2)]


def test_unknown_flags_are_errors_not_disabled() -> None:
    flags = FeatureFlags.for_vendors(["epic"])
    for attempt in (lambda: flags.is_enabled("epic_write"), lambda: flags.update("x", True),
                    lambda: flags.set_user_override("u", "x", True), lambda: flags.override_count("x")):
        with pytest.raises(UnknownFeatureFlag):
            attempt()
    flags.register("epic_bulk_export", enabled=False)
    assert not flags.is_enabled("epic_bulk_export")
    with pytest.raises(ValueError, match="already"):
        flags.register("epic_bulk_export")


class Provider:
    """A health probe whose provider fails during [fail_from, fail_until) of virtual time."""

    def __init__(self, clock: VirtualClock, fail_from: float = float("inf"), fail_until: float = float("inf")) -> None:
        self.clock, self.fail_from, self.fail_until = clock, fail_from, fail_until

    async def __call__(self) -> object:
        if self.fail_from <= self.clock.monotonic() < self.fail_until:
            raise ServerError("down", vendor="epic", status=503)
        return None


def recovery(fail_from: float = float("inf"), fail_until: float = float("inf"), *,
             checks_running: bool = False) -> tuple[object, list[tuple[float, str, bool | None]]]:
    async def main() -> tuple[object, list[tuple[float, str, bool | None]]]:
        clock = VirtualClock()
        seen: list[tuple[float, str, bool | None]] = []

        def listen(event: IntegrationEvent) -> None:
            if isinstance(event, FeatureFlagChanged):
                seen.append((clock.monotonic(), event.flag, event.enabled))

        flags = FeatureFlags.for_vendors(["epic"], listener=listen)
        emergency_shutdown(flags, "epic")
        monitor = ProviderMonitor("epic", clock, probe=Provider(clock, fail_from, fail_until),
                                  config=MonitorConfig(window_s=120.0, minimum_samples=2, check_interval_s=30.0))
        if checks_running:
            monitor.start()
        outcome = await staged_recovery(flags, monitor, clock, RecoveryPlan())
        await monitor.stop()
        return outcome, seen

    return run_virtual(main)


def test_staged_recovery_enables_reads_first_then_writes_after_15_minutes() -> None:
    outcome, seen = recovery()
    assert outcome.completed
    assert outcome.stage == "done"
    assert outcome.elapsed_s == 2700.0
    assert seen == [(0.0, "epic_fhir_read_only", False), (0.0, "epic_fhir_write", False),
                    (0.0, "epic_fhir_read_only", True), (900.0, "epic_fhir_write", True)]


def test_staged_recovery_backs_out_reads_when_the_provider_fails_during_the_read_soak() -> None:
    outcome, seen = recovery(fail_from=300.0, checks_running=True)
    assert (outcome.completed, outcome.stage, outcome.health) == (False, "reads", HealthStatus.UNHEALTHY)  # type: ignore[attr-defined]
    assert seen[2:] == [(0.0, "epic_fhir_read_only", True), (330.0, "epic_fhir_read_only", False)]


def test_staged_recovery_backs_out_writes_but_keeps_reads() -> None:
    outcome, seen = recovery(fail_from=1500.0)
    assert (outcome.completed, outcome.stage) == (False, "writes")  # type: ignore[attr-defined]
    assert seen[2:] == [(0.0, "epic_fhir_read_only", True), (900.0, "epic_fhir_write", True),
                        (1500.0, "epic_fhir_write", False)]  # the first check (every 30 s) that failed


def test_staged_recovery_does_not_start_while_the_provider_is_down() -> None:
    outcome, seen = recovery(fail_from=0.0)
    assert (outcome.completed, outcome.stage, outcome.elapsed_s) == (False, "verify", 0.0)  # type: ignore[attr-defined]
    assert seen[2:] == []  # runbook 000 §8 step 1 failed: no flag touched
