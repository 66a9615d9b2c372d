"""Resilience events become typed journal events (harness.journal.resilience_entry) that survive the
JSON Lines round trip and carry no identifier."""

from __future__ import annotations

from harness.clock import run_virtual
from harness.journal import (
    BreakerEvent,
    DegradationActivatedEvent,
    DegradationClearedEvent,
    FlagChangedEvent,
    ProviderHealthEvent,
    parse_line,
    resilience_entry,
)
from integrations.events import BreakerState, BreakerTransitioned
from tests.integrations.resilience.support import down, ehr, make_rig


def test_an_outage_and_a_flag_change_journal_as_typed_events() -> None:
    async def main() -> list[str]:
        rig = make_rig()
        rig.flags.set_user_override("user_123", "fake_fhir_write", False)
        await rig.client.read("Patient", "p1")
        rig.vendor.default = down
        for _ in range(3):
            await rig.client.read("Patient", "p1")
        rig.vendor.default = ehr
        await rig.clock.sleep(60)
        for _ in range(2):
            await rig.client.read("Patient", "p1")
        await rig.close()
        entries = [resilience_entry(event, t) for t, event in rig.events]
        return [entry.model_dump_json() for entry in entries if entry is not None]

    lines = run_virtual(main)
    events = [parse_line(line) for line in lines]
    assert [type(e) for e in events] == [
        FlagChangedEvent, ProviderHealthEvent, DegradationActivatedEvent, ProviderHealthEvent, ProviderHealthEvent,
        DegradationClearedEvent,
    ]
    flag, unhealthy, activated, *_, cleared = events
    assert isinstance(flag, FlagChangedEvent)
    assert flag.scope == "user"
    assert flag.user_ref is not None
    assert isinstance(unhealthy, ProviderHealthEvent)
    assert (unhealthy.t, unhealthy.to_status, unhealthy.breaker_state) == (0.0, "UNHEALTHY", "OPEN")
    assert unhealthy.samples == 3
    assert isinstance(activated, DegradationActivatedEvent)
    assert activated.reasons == ("breaker_open", "provider_unhealthy")
    assert isinstance(cleared, DegradationClearedEvent)
    assert (cleared.t, cleared.duration_s) == (60.0, 60.0)
    text = "\n".join(lines)
    for secret in ("user_123", "p1", "Doe"):
        assert secret not in text


def test_breaker_journal_event_has_manual_and_slow_call_rate_with_defaults() -> None:
    old_style = BreakerEvent(t=1.0, breaker="epic", from_state="CLOSED", to_state="OPEN", failure_rate=0.5, calls=10)
    assert (old_style.manual, old_style.slow_call_rate) == (False, None)
    forced = BreakerEvent(t=2.0, breaker="epic", from_state="CLOSED", to_state="FORCED_OPEN", failure_rate=None,
                          calls=0, slow_call_rate=None, manual=True)
    assert parse_line(forced.model_dump_json()) == forced


def test_other_events_are_not_resilience_entries() -> None:
    event = BreakerTransitioned(name="epic", from_state=BreakerState.CLOSED, to_state=BreakerState.OPEN,
                                failure_rate=1.0, calls=10)
    assert resilience_entry(event, 0.0) is None
