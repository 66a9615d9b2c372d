"""`credential.rejected` reaches the journal (harness.runner.journal_listener) and the
`no_credential_rejected` check (harness/checks/credentials.py) reads it: it passes for a rotation done
in the runbooks' order and fails for one done out of order (000_030ea53f0735abf7.txt §1,
002_437ee203264dfa64.txt §10.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import TypeAdapter

from harness.checks import evaluate
from harness.checks.models import Expectation, NoCredentialRejected
from harness.clock import run_virtual
from harness.journal import CredentialRejectedEvent, Event, ScenarioStarted, TokenIssuedEvent, parse_line
from tests.integrations.auth.support import build
from tests.integrations.auth.test_rotation_simulators import deploy, new_credential, register_new

SOURCE = "000_030ea53f0735abf7.txt §1"


def rejected(t: float, vendor: str = "cerner", fallback: bool = False) -> CredentialRejectedEvent:
    return CredentialRejectedEvent(t=t, vendor=vendor, credential="lab-secret-1", status=401, error="invalid_client",
                                   fallback=fallback)


def verdict(spec: NoCredentialRejected, events: Sequence[Event]) -> tuple[str, object, str]:
    [result] = evaluate([spec], events, SOURCE)
    return result.verdict, result.observed, result.detail


START = ScenarioStarted(t=0.0, scenario="s", file="s.yaml", seed=1, mode="virtual", duration_s=600.0)


def test_the_check_passes_without_rejections_and_fails_with_one() -> None:
    spec = NoCredentialRejected(check="no_credential_rejected")
    called = TokenIssuedEvent(t=1.0, vendor="cerner", expires_in_s=300.0, reason="initial")
    assert verdict(spec, [START, called]) == ("pass", 0, "no credential was refused (1 call(s) and token event(s))")
    assert verdict(spec, [START]) == ("fail", None, "matched nothing: no vendor was called")
    assert verdict(spec, [START, rejected(61.5)]) == (
        "fail", 1, "cerner refused lab-secret-1 at 61.5s (invalid_client)")


def test_the_check_filters_by_vendor_allows_a_budget_and_summarizes_many() -> None:
    events = [START, *(rejected(60.0 + i, "epic", fallback=True) for i in range(5)), rejected(70, "cerner")]
    medplum = NoCredentialRejected(check="no_credential_rejected", vendor="medplum")
    assert verdict(medplum, events) == ("fail", None, "matched nothing: medplum was never called")
    passed, observed, detail = verdict(NoCredentialRejected(check="no_credential_rejected", vendor="epic"), events)
    assert (passed, observed) == ("fail", 5)
    assert detail.endswith("; 2 more")
    assert "fell back" in detail
    assert verdict(NoCredentialRejected(check="no_credential_rejected", max=6), events)[:2] == ("pass", 6)


def test_a_scenario_file_can_state_the_check() -> None:
    spec = TypeAdapter(Expectation).validate_python({"check": "no_credential_rejected", "vendor": "epic"})
    assert isinstance(spec, NoCredentialRejected)
    assert spec.label() == "no_credential_rejected[epic]"


def _journal_of_rotation(right_order: bool) -> list[Event]:
    """A Cerner rotation, with the lab's journal listening to the integration's events."""

    async def main() -> list[Event]:
        lab = await build("cerner", journal=True)
        work = asyncio.create_task(lab.reads(until=100.0, every=5.0))  # before the 60 s recheck
        await lab.clock.sleep(50)
        [old_id] = await lab.credential_ids()
        if right_order:
            await register_new(lab)
            deploy(lab, new_credential(lab))
        await lab.revoke(old_id)
        await lab.expire_tokens()
        await work
        await lab.close()
        assert lab.journal is not None
        return [START, *lab.journal.events]

    return run_virtual(main)


def test_rotation_journals_through_the_runner_listener_and_the_check_judges_it() -> None:
    spec = NoCredentialRejected(check="no_credential_rejected", vendor="cerner")
    good = _journal_of_rotation(right_order=True)
    bad = _journal_of_rotation(right_order=False)
    assert verdict(spec, good)[:2] == ("pass", 0)
    assert verdict(spec, bad)[:2] == ("fail", 1)
    [event] = [e for e in bad if isinstance(e, CredentialRejectedEvent)]
    assert 50.0 <= event.t <= 55.0
    assert (event.vendor, event.credential, event.error, event.fallback) == (
        "cerner", "lab-secret-1", "invalid_client", False)
    assert parse_line(event.model_dump_json()) == event  # the journal reads it back
