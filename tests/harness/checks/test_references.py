"""What a scenario file may refer to in its checks, refused at validate time (exit 2) with the field named:
`events.where` keys and values against the event kind's fields and domains, breakers by name or by a vendor
that resolves to one, faults named by `fault:` and by anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.models import BreakerCloses
from harness.cli import main
from harness.errors import ScenarioError
from harness.scenario.loader import load_scenario

HEAD = """name: refs
description: d
runbook: ["000_030ea53f0735abf7.txt §2"]
duration: 8m
{setup}workload:
{workload}faults:
  - {{kind: outage, target: epic, at: 2m, for: 3m}}
  - {{kind: net_latency, target: epic, at: 0s, latency: 40ms, background: true, name: wan}}
expectations:
"""
PLAIN = "  - {operation: read_patient, vendor: epic, rate: 1/s}\n"
FAILOVER_SETUP = "setup:\n  failover: {primary: epic, fallbacks: [cerner]}\n"
FAILOVER_READS = "  - {operation: read_patient_failover, vendor: epic, rate: 6/m}\n"


def load(tmp_path: Path, expectations: str, *, setup: str = "", workload: str = PLAIN) -> object:
    path = tmp_path / "refs.yaml"
    path.write_text(HEAD.format(setup=setup, workload=workload) + expectations, encoding="utf-8")
    return load_scenario(path)


def refused(tmp_path: Path, expectations: str, **kw: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, expectations, **kw)
    return caught.value


def events(where: str, kind: str = "request", bounds: str = "max: 0") -> str:
    return f"  - {{check: events, kind: {kind}, where: {where}, {bounds}}}\n"


@pytest.mark.parametrize(("kind", "where", "message"), [
    # the typos: a max: 0 on them passed while matching nothing
    ("breaker.transition", "{breaker: cernr, to_state: OPNE}", "'OPNE' is not a breaker state (CLOSED, OPEN, "
                                                              "HALF_OPEN, FORCED_OPEN, DISABLED)"),
    ("breaker.transition", "{breaker: cernr}", "'cernr' is not a breaker of the setup"),
    ("request", '{status: ">=500"}', "one HTTP status code, an integer from 100 to 599, or null for no response (a "
                                     "where is an equality: comparisons such as '>=500' are not supported"),
    ("request", '{status: "503"}', "not str '503'"),
    ("request", "{status: 5}", "5 is not one HTTP status code"),
    ("request", "{attempt: true}", "request.attempt takes int, not bool True"),
    ("request", "{vendor: epicc}", "'epicc' is not a vendor (allscripts, cerner, epic, medplum) or a failover system"),
    ("request", "{colour: red}", "request events have no field 'colour' (fields: attempt,"),
    ("operation", "{error: SeverError}", "'SeverError' is not an error class name of the integration"),
    ("operation", "{ok: 1}", "operation.ok takes bool, not int 1"),
    ("operation", "{operation: read_patients}", "is not a workload operation"),
    ("failover.exhausted", "{reasons: CircuitOpen}", "is a list or mapping: where compares one value"),
    ("provider.health", "{to_status: DOWN}", "is not a provider health status (HEALTHY, DEGRADED, UNHEALTHY)"),
    ("consent.checked", "{status: revoked}", "is not a consent status (granted, denied, missing)"),
    ("fault.start", "{fault: outtage}", "is not a fault kind"),
    ("token.failed", "{error: invalid_clint}", "an OAuth error code"),
    ("audit.recorded", "{outcome: ok}", "is not an audit outcome (success, failure, denied)"),
    ("scenario.start", "{mode: fast}", "'fast' is not a mode (virtual, real)"),
])
def test_where_that_can_never_match_is_refused(tmp_path: Path, kind: str, where: str, message: str) -> None:
    err = refused(tmp_path, events(where, kind))
    assert err.field == "expectations[0].where"
    assert message in err.message


@pytest.mark.parametrize(("kind", "where"), [
    ("request", "{vendor: epic, status: 503, error: ServerError, method: GET}"),
    ("request", "{status: null}"),
    ("operation", "{ok: false, error: FailoverExhausted}"),  # a typed error of integrations/systems
    ("operation", "{error: UnexpectedKeyError}"),
    ("operation", "{error: Cancelled}"),
    ("credential.rejected", "{error: invalid_client, fallback: false}"),
    ("job.failed", "{error: UnrecoverableJobError}"),
    ("queue.store_unavailable", "{error: ConnectionError}"),
    ("fault.start", "{name: wan, background: true}"),
    ("breaker.transition", "{breaker: epic, to_state: FORCED_OPEN, manual: true}"),
    ("consent.checked", '{data_class: "CLINICAL_NOTES,LAB_RESULTS"}'),
])
def test_where_values_of_the_right_domain_load(tmp_path: Path, kind: str, where: str) -> None:
    load(tmp_path, events(where, kind))


def test_setup_dependent_where_values_are_checked_against_the_setup(tmp_path: Path) -> None:
    err = refused(tmp_path, events("{breaker: epic_prod}", "breaker.transition"))
    assert (err.field, err.message) == (
        "expectations[0].where.breaker", "no breaker 'epic_prod' in this setup (breakers: epic)")
    err = refused(tmp_path, events("{vendor: cerner_prod}"))
    assert "no failover system 'cerner_prod' in this setup (systems: none: no setup.failover)" in err.message
    err = refused(tmp_path, events("{name: outage@cerner}", "fault.start"))
    assert err.message == "no fault named 'outage@cerner' (faults: outage@epic, wan)"
    load(tmp_path, events("{breaker: cerner_prod}", "breaker.transition"), setup=FAILOVER_SETUP,
         workload=FAILOVER_READS)


def test_status_comparisons_are_refused_through_the_cli_with_exit_2(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text(HEAD.format(setup="", workload=PLAIN) + events('{status: ">=500"}'), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert "comparisons such as '>=500' are not supported" in capsys.readouterr().err


# -- breakers by name ---------------------------------------------------------------------------------------

def test_a_vendor_resolves_to_the_failover_systems_breaker_when_the_lab_client_is_idle(tmp_path: Path) -> None:
    scenario = load(tmp_path, "  - {check: breaker_closes, vendor: epic}\n"
                              "  - {check: invariant, invariant: breaker_transitions_legal, vendor: cerner}\n",
                    setup=FAILOVER_SETUP, workload=FAILOVER_READS)
    closes, legal = scenario.expectations  # type: ignore[attr-defined]
    assert isinstance(closes, BreakerCloses)
    assert (closes.breaker, closes.label()) == ("epic_prod", "breaker_closes[epic]")
    assert (legal.breaker, legal.label()) == ("cerner_prod", "invariant[breaker_transitions_legal,cerner]")


def test_a_vendor_with_two_busy_breakers_is_ambiguous(tmp_path: Path) -> None:
    err = refused(tmp_path, "  - {check: breaker_opens, vendor: epic}\n", setup=FAILOVER_SETUP,
                  workload=FAILOVER_READS + PLAIN)
    assert err.field == "expectations[0].vendor"
    assert err.message == ("vendor epic has 2 breakers in this setup (epic, epic_prod): name one with breaker: "
                           "instead of vendor:")
    scenario = load(tmp_path, "  - {check: breaker_opens, breaker: epic}\n  - {check: breaker_opens, breaker: "
                              "epic_prod}\n", setup=FAILOVER_SETUP, workload=FAILOVER_READS + PLAIN)
    assert [e.breaker_name() for e in scenario.expectations] == ["epic", "epic_prod"]  # type: ignore[attr-defined]


def test_an_unknown_breaker_is_refused_with_the_setups_names(tmp_path: Path) -> None:
    err = refused(tmp_path, "  - {check: breaker_stays_closed, breaker: epic_prd}\n", setup=FAILOVER_SETUP,
                  workload=FAILOVER_READS)
    assert (err.field, err.message) == ("expectations[0].breaker", "no breaker 'epic_prd' in this setup (breakers: "
                                                                   "cerner, cerner_prod, epic, epic_prod)")
    err = refused(tmp_path, "  - {check: breaker_stays_closed, vendor: epic, breaker: epic}\n")
    assert "give vendor or breaker (one of them)" in err.message


# -- faults by name -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("check", "field"), [
    ("{check: recovery_time, vendor: epic, max: 1m, fault: outage@epc}", "expectations[0].fault"),
    ("{check: breaker_closes, vendor: epic, fault: outage@epc}", "expectations[0].fault"),
    ("{check: alert_rule, rule: 002-8.4-5xx-rate, fires: true, fault: outage@epc}", "expectations[0].fault"),
    ('{check: success_rate, min: 99%, between: ["outage@epic end", "outage@epc end + 1m"]}',
     "expectations[0].between[1]"),
    ('{check: sla_band, sla: 000-7-success-rate, after: "outage@epc end + 30s"}', "expectations[0].after"),
])
def test_an_unknown_fault_is_refused_with_the_field(tmp_path: Path, check: str, field: str) -> None:
    err = refused(tmp_path, f"  - {check}\n")
    assert (err.field, err.message) == (field, "no fault named 'outage@epc' (faults: outage@epic, wan)")


def test_a_name_two_faults_share_is_refused_once_referenced(tmp_path: Path) -> None:
    twice = HEAD.replace("  - {{kind: net_latency", "  - {{kind: outage, target: epic, at: 6m, for: 1m}}\n"
                                                    "  - {{kind: net_latency")
    path = tmp_path / "twice.yaml"
    path.write_text(twice.format(setup="", workload=PLAIN) + "  - {check: success_rate, min: 99%}\n", encoding="utf-8")
    load_scenario(path)  # not referenced: fine
    path.write_text(twice.format(setup="", workload=PLAIN)
                    + "  - {check: recovery_time, vendor: epic, max: 1m, fault: outage@epic}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "expectations[0].fault"
    assert "2 faults are named 'outage@epic'" in caught.value.message


def test_anchor_syntax(tmp_path: Path) -> None:
    scenario = load(tmp_path, '  - {check: success_rate, min: 99%, between: ["outage@epic end + 30s", '
                              '{fault: wan, edge: start, plus: 10s}]}\n')
    begin, end = scenario.expectations[0].between  # type: ignore[attr-defined]
    assert (begin.describe(), end.describe()) == ("outage@epic end + 30s", "wan start + 10s")
    err = refused(tmp_path, '  - {check: success_rate, min: 99%, between: ["outage@epic middle", 5m]}\n')
    assert "a fault anchor like 'outage@epic end + 30s'" in err.message


def test_every_error_field_of_the_integration_takes_its_class_names(tmp_path: Path) -> None:
    for kind, field in (("request", "error"), ("retry.scheduled", "reason"), ("fhir_sync.failed", "error"),
                        ("failover.read", "reason"), ("job.failed", "error")):
        err = refused(tmp_path, events(f"{{{field}: SeverError}}", kind))
        assert "'SeverError' is not an error class name of the integration" in err.message, kind
        load(tmp_path, events(f"{{{field}: ServerError}}", kind))
    load(tmp_path, events("{error: anything the lab could not do}", "fault.error"))  # the lab's own, free text
