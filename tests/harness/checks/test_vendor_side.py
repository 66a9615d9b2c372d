"""The vendor-side checks (`harness.checks.vendor_side`) over hand-built `vendor.request` journals: each passes,
fails and matches nothing; `vendor.request` events from a simulator's journal entries; and one end-to-end run
of the library's medplum-outage scenario (virtual mode) with the three checks added, which the built-in
integration passes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from harness.checks.models import Expectation
from harness.checks.result import CheckResult
from harness.clock import VIRTUAL_EPOCH
from harness.journal import Event, FaultStarted, FaultStopped, VendorRequestEvent
from harness.journal.vendor import (
    SimulatorJournalEntry,
    in_arrival_order,
    is_token_request,
    resource_of,
    vendor_request_events,
)
from harness.runner import run_scenario
from harness.scenario.loader import load_scenario
from tests.harness.checks.journals import journal, run
from tests.support.verdicts import failing, passed_or_lab_late

_EXPECTATION: TypeAdapter[Expectation] = TypeAdapter(Expectation)
ROOT = Path(__file__).resolve().parents[3]


def seen(t: float, status: int | None = 200, *, vendor: str = "medplum", client: str | None = "lab",
         path: str = "/fhir/R4/Patient/p1", method: str = "GET", retry_after: float | None = None,
         seq: int | None = None) -> VendorRequestEvent:
    return VendorRequestEvent(
        t=t, vendor=vendor, seq=seq if seq is not None else int(t * 1000), method=method, path=path, status=status,
        outcome="response" if status is not None else "dropped", client=client,
        token_request=is_token_request(method, path), resource_type=None, resource_id=None, latency_ms=0.0,
        faults=(), retry_after_s=retry_after, fields=())


def outage(begin: float = 60.0, end: float = 180.0, target: str = "medplum",
           background: bool = False) -> list[Event]:
    return [FaultStarted(t=begin, fault_id="f1", fault="outage", target=target, params={}, name=f"outage@{target}",
                         background=background),
            FaultStopped(t=end, fault_id="f1", fault="outage", target=target, name=f"outage@{target}",
                         background=background)]


def check(spec: dict[str, Any], events: list[Event]) -> CheckResult:
    return run(_EXPECTATION.validate_python(spec), events)


def steady(begin: float, end: float, every: float, status: int | None = 200) -> list[Event]:
    out: list[Event] = []
    t = begin
    while t < end:
        out.append(seen(round(t, 6), status))
        t += every
    return out


def breaker_like() -> list[Event]:
    """Healthy traffic, then an outage 60-180 s: 10 failures before the breaker opens, a probe round of 3 at
    ~70 s + 60 s, then success again."""
    return [*steady(0, 60, 1.0), *steady(60, 70, 1.0, 503), *[seen(130.0 + i / 10, 503) for i in range(3)],
            *steady(180, 240, 1.0)]


# --- no_hammering ------------------------------------------------------------------------------------------


def test_no_hammering_passes_when_the_breaker_probes_once_a_minute() -> None:
    result = check({"check": "no_hammering", "vendor": "medplum"}, journal(240, outage(), breaker_like()))
    assert (result.verdict, result.matched, result.observed) == ("pass", 13, 3), result.detail
    assert result.source == "000_030ea53f0735abf7.txt §2"
    assert "at most 3 per window" in result.detail


def test_no_hammering_fails_on_a_client_that_keeps_calling_a_dead_vendor() -> None:
    events = journal(240, outage(), steady(0, 60, 1.0), steady(60, 180, 2.0, 503), steady(180, 240, 1.0))
    result = check({"check": "no_hammering", "vendor": "medplum"}, events)
    assert (result.verdict, result.matched, result.observed) == ("fail", 60, 30), result.detail
    assert "medplum: 30 requests in 90s-150s during outage@medplum" in result.detail
    relaxed = check({"check": "no_hammering", "vendor": "medplum", "max_requests": 30}, events)
    assert relaxed.verdict == "pass", relaxed.detail


def test_no_hammering_counts_dropped_connections_as_failing() -> None:
    events = journal(240, outage(), steady(60, 180, 1.0, None))
    result = check({"check": "no_hammering"}, events)
    assert (result.verdict, result.observed) == ("fail", 60), result.detail


def test_no_hammering_judges_an_error_rate_from_min_failure_rate() -> None:
    events = journal(240, outage(), steady(60, 180, 1.0), steady(60.5, 180, 3.0, 503))  # 25 % of answers fail
    strict = check({"check": "no_hammering", "vendor": "medplum", "min_failure_rate": "20%"}, events)
    assert (strict.verdict, strict.matched, strict.observed) == ("fail", 160, 80), strict.detail


@pytest.mark.parametrize("events", [
    journal(240, steady(0, 240, 1.0)),  # no fault at all
    journal(240, outage(), steady(0, 240, 1.0)),  # a fault the vendor never failed under (e.g. a latency)
    journal(240, outage(background=True), steady(60, 180, 1.0, 503)),  # a background condition
    journal(240, outage(target="epic"), steady(60, 180, 1.0, 503)),  # a fault on another vendor
    journal(240, outage(), steady(60, 180, 1.0), steady(60.5, 180, 3.0, 503)),  # a 25 % error rate
])
def test_no_hammering_matches_nothing_without_a_failing_fault_window(events: list[Event]) -> None:
    result = check({"check": "no_hammering", "vendor": "medplum"}, events)
    assert (result.verdict, result.matched) == ("fail", 0), result.detail
    assert result.detail.startswith("matched nothing: no fault on medplum under which at least 50% of its answers")
    allowed = check({"check": "no_hammering", "vendor": "medplum", "allow_empty": True}, events)
    assert allowed.verdict == "pass"


# --- retry_after_honoured -----------------------------------------------------------------------------------


def test_retry_after_honoured_passes_when_the_client_waits() -> None:
    events = journal(120, [seen(10.0, 429, retry_after=30.0), seen(40.0), seen(41.0, 503, retry_after=5.0),
                           seen(46.0), seen(20.0, client="other")])  # another client is not held to it
    result = check({"check": "retry_after_honoured", "vendor": "medplum"}, events)
    assert (result.verdict, result.matched, result.observed) == ("pass", 2, 0), result.detail
    assert result.source == "000_030ea53f0735abf7.txt §4"


def test_retry_after_honoured_fails_on_an_early_request_by_the_same_client() -> None:
    events = journal(120, [seen(10.0, 429, retry_after=30.0), seen(25.0), seen(39.5), seen(40.0)])
    result = check({"check": "retry_after_honoured"}, events)
    assert (result.verdict, result.matched, result.observed) == ("fail", 1, 2), result.detail
    assert "at 25s, 15.000s before the Retry-After given at 10s" in result.detail


def test_retry_after_honoured_matches_nothing_without_a_retry_after() -> None:
    events = journal(120, [seen(10.0, 429), seen(11.0, 503), seen(12.0, 200, retry_after=5.0), seen(13.0)])
    result = check({"check": "retry_after_honoured", "vendor": "medplum"}, events)
    assert (result.verdict, result.matched) == ("fail", 0), result.detail
    assert result.detail.startswith("matched nothing: no 429 or 503 with Retry-After from medplum")


# --- no_token_storm -----------------------------------------------------------------------------------------


def token(t: float, vendor: str = "epic") -> VendorRequestEvent:
    return seen(t, vendor=vendor, method="POST", path="/oauth2/token")


def test_no_token_storm_passes_on_reused_tokens() -> None:
    events = journal(600, [token(0.0), token(240.0), token(480.0), token(481.0)], steady(0, 600, 5.0))
    result = check({"check": "no_token_storm", "vendor": "epic"}, events)
    assert (result.verdict, result.matched, result.observed) == ("pass", 4, 2), result.detail
    assert result.source == "002_437ee203264dfa64.txt §2.1"


def test_no_token_storm_fails_on_a_token_per_request() -> None:
    events = journal(600, [token(float(t)) for t in range(100, 130, 2)], [token(5.0, "medplum")])
    result = check({"check": "no_token_storm"}, events)
    assert (result.verdict, result.matched, result.observed) == ("fail", 16, 10), result.detail
    assert result.detail.startswith("epic: 10 token requests in 60s-120s; epic: 5 token requests in 120s-180s")


def test_no_token_storm_matches_nothing_without_a_token_request() -> None:
    events = journal(600, steady(0, 600, 5.0), [token(5.0, "medplum")])
    result = check({"check": "no_token_storm", "vendor": "epic"}, events)
    assert (result.verdict, result.matched) == ("fail", 0), result.detail
    assert result.detail.startswith("matched nothing: no token request to epic")


@pytest.mark.parametrize(("bad", "message"), [
    ({"check": "no_hammering", "window": "0s"}, "window"), ({"check": "no_token_storm", "max_requests": -1},
                                                            "max_requests"),
    ({"check": "retry_after_honoured", "vendor": "epicc"}, "vendor"), ({"check": "no_hammering", "colour": "red"},
                                                                        "colour")])
def test_options_are_validated(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _EXPECTATION.validate_python(bad)


# --- vendor.request events from a simulator's journal ---------------------------------------------------------


def test_journal_entries_become_events_at_their_scenario_time_in_arrival_order() -> None:
    now = VIRTUAL_EPOCH + timedelta(seconds=100)

    def entry(seq: int, at: float, path: str, method: str = "GET", **kw: Any) -> SimulatorJournalEntry:
        return SimulatorJournalEntry(seq=seq, at=VIRTUAL_EPOCH + timedelta(seconds=at), method=method, path=path,
                                     client="c", status=200, latency_ms=1.5, **kw)

    medplum = vendor_request_events("medplum", [entry(1, 10.0, "/oauth2/token", "POST"),
                                                entry(2, 20.0, "/fhir/R4/Patient/p1/_history/2")],
                                    now=now, now_t=90.0)
    epic = vendor_request_events("epic", [entry(7, 20.0, "/api/FHIR/R4/Observation", "POST",
                                                fields=("code", "resourceType"))], now=now, now_t=90.0)
    ordered = in_arrival_order([medplum, epic])
    assert [(e.t, e.vendor, e.seq, e.token_request, e.resource_type, e.resource_id, e.fields) for e in ordered] == [
        (0.0, "medplum", 1, True, None, None, ()), (10.0, "medplum", 2, False, "Patient", "p1", ()),
        (10.0, "epic", 7, False, "Observation", None, ("code", "resourceType"))]


@pytest.mark.parametrize(("path", "expected"), [
    ("/fhir/R4/Patient/abc-1", ("Patient", "abc-1")), ("/fhir/R4/Patient", ("Patient", None)),
    ("/fhir/R4/Patient/$match", ("Patient", None)), ("/fhir/R4/Patient/_search", ("Patient", None)),
    ("/r4/ec2458f2/Encounter/9", ("Encounter", "9")), ("/Unity/UnityService.svc/json/GetToken", (None, None)),
    ("/oauth2/token", (None, None))])
def test_resource_type_and_id_from_the_path(path: str, expected: tuple[str | None, str | None]) -> None:
    assert resource_of(path) == expected


def test_token_requests_are_posts_to_a_token_endpoint() -> None:
    assert is_token_request("POST", "/tenants/t/protocols/oauth2/profiles/smart-v1/token")
    assert is_token_request("POST", "/Unity/UnityService.svc/json/GetToken")
    assert not is_token_request("GET", "/oauth2/token")
    assert not is_token_request("POST", "/fhir/R4/Patient")


# --- end to end -----------------------------------------------------------------------------------------------


def test_the_built_in_integration_passes_the_vendor_side_checks_in_medplum_outage(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "medplum-outage.yaml").read_text(encoding="utf-8"))
    data["expectations"] = [{"check": "no_hammering", "vendor": "medplum"},
                            {"check": "no_token_storm", "vendor": "medplum"},
                            {"check": "retry_after_honoured", "vendor": "medplum", "allow_empty": True}]
    copy = tmp_path / "medplum-outage-vendor-side.yaml"
    copy.write_text(yaml.safe_dump(data), encoding="utf-8")
    scenario = load_scenario(copy)
    result = run_scenario(scenario, file=copy, mode="virtual", seed=1)
    checks = {c.name: c for c in result.checks}
    hammering = checks["no_hammering[medplum]"]
    assert (hammering.verdict, hammering.observed) == ("pass", 3), hammering.detail
    assert hammering.matched
    storm = checks["no_token_storm[medplum]"]
    assert storm.verdict == "pass", storm.detail
    assert storm.matched
    # Medplum sends no Retry-After (simulators/medplum/limits.py): nothing to judge, allowed here
    assert checks["retry_after_honoured[medplum]"].detail.startswith("matched nothing: ")
    seen_events = result.journal.of(VendorRequestEvent)
    assert seen_events
    assert {e.vendor for e in seen_events} == {"medplum"}
    assert [e.t for e in seen_events] == sorted(e.t for e in seen_events)
    assert any(e.status == 503 for e in seen_events)
    assert result.verdict == "pass"


@pytest.mark.real_network
def test_real_mode_journals_what_the_vendor_saw_and_judges_it(tmp_path: Path) -> None:
    """Over real sockets at 40x: the simulator's journal, read through its admin API, becomes `vendor.request`
    events in scenario time, and the built-in integration does not hammer Medplum while it drops connections.
    PASS, or INCONCLUSIVE because the lab ran late on a loaded machine (then the checks are still judged)."""
    data = yaml.safe_load((ROOT / "tests" / "data" / "short-outage.yaml").read_text(encoding="utf-8"))
    data["expectations"] = [{"check": "no_hammering", "vendor": "medplum"},
                            {"check": "no_token_storm", "vendor": "medplum"}]
    copy = tmp_path / "short-outage-vendor-side.yaml"
    copy.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = run_scenario(load_scenario(copy), file=copy, mode="real", seed=1, time_scale=40)
    if passed_or_lab_late(result):  # a late lab's own stalls bunch requests: judged only on time
        assert [c.verdict for c in result.checks] == ["pass", "pass", "pass"], failing(result)
    seen_events = result.journal.of(VendorRequestEvent)
    dropped = [e for e in seen_events if e.status is None]
    assert dropped, "the outage drops connections: the vendor saw them"
    # inside the outage as it was measured (a late lab switches it late: the journal's fault times, not the plan)
    [began] = [e.t for e in result.journal.events if isinstance(e, FaultStarted)]
    [ended] = [e.t for e in result.journal.events if isinstance(e, FaultStopped)]
    assert all(began - 1.0 <= e.t <= ended + 2.0 for e in dropped), ([e.t for e in dropped], began, ended)
    assert all(e.wall is not None for e in seen_events)
