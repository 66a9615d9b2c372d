"""Read failover against the simulators (virtual clock): the same patient (same identifier, different
server ids) is seeded in several systems; when the primary is unreachable or its breaker is open, the
read is served by another system holding the patient, and the result says which."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.clock import VirtualClock, run_virtual
from harness.journal import FailoverExhaustedEvent, FailoverReadEvent, parse_line, systems_entry
from integrations.events import (
    BreakerState,
    BreakerTransitioned,
    IntegrationEvent,
    ReadFailedOver,
    ReadFailoverExhausted,
)
from integrations.fhir import (
    AuthError,
    BundlePage,
    CircuitOpen,
    ConnectionFailed,
    ConnectorError,
    FhirResource,
    Forbidden,
    NotFound,
    RateLimited,
    RequestTimeout,
    SearchParams,
    ServerError,
)
from integrations.systems import (
    Attempt,
    FailoverExhausted,
    FailoverReader,
    Identifier,
    SourcedResource,
    find_patients,
    unavailable,
)
from tests.integrations.systems.support import EMPI, EMPI_VALUE, PATIENT, LabSystem, build_registry, lab_systems

KEY = Identifier(EMPI, EMPI_VALUE)

Scenario = Callable[[FailoverReader, dict[str, LabSystem], dict[str, str]], Awaitable[Any]]


def _run(names: tuple[str, ...], scenario: Scenario, *,
         seed_in: tuple[str, ...] | None = None) -> tuple[Any, list[IntegrationEvent], dict[str, str],
                                                           dict[str, LabSystem]]:
    clock = VirtualClock()
    events: list[IntegrationEvent] = []

    async def main() -> tuple[Any, dict[str, str], dict[str, LabSystem]]:
        systems = lab_systems(clock, names)
        ids = {name: systems[name].seed(PATIENT) for name in (seed_in or names)}
        async with build_registry(systems, clock, events) as registry:
            outcome = await scenario(FailoverReader(registry, listener=events.append), systems, ids)
        return outcome, ids, systems

    outcome, ids, systems = run_virtual(main)
    return outcome, events, ids, systems


def test_a_healthy_primary_serves_the_read_itself() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        return await reader.read_patient("epic", ids["epic"], KEY)

    result, events, ids, systems = _run(("epic", "cerner"), scenario)
    assert isinstance(result, SourcedResource)
    assert (result.system_id, result.vendor.value, result.resource.id) == ("epic", "epic", ids["epic"])
    assert not result.failed_over
    assert not [e for e in events if isinstance(e, ReadFailedOver | ReadFailoverExhausted)]
    assert systems["cerner"].counter.total == 0  # the fallback was never asked


def test_an_unreachable_primary_fails_over_to_the_system_holding_the_same_patient() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        systems["epic"].fhir_outage("drop")  # connections closed, no answer
        return await reader.read_patient("epic", ids["epic"], KEY)

    result, events, ids, _ = _run(("epic", "cerner"), scenario)
    assert result.system_id == "cerner"
    assert result.vendor.value == "cerner"
    assert result.failed_over
    assert result.resource.id == ids["cerner"] != ids["epic"]  # the other system's own copy, by identifier
    assert KEY.carried_by(result.resource)
    assert result.passed_over == (Attempt("epic", "ConnectionFailed"),)
    failovers = [e for e in events if isinstance(e, ReadFailedOver)]
    assert failovers == [ReadFailedOver(resource_type="Patient", primary="epic", served_by="cerner",
                                        reason="ConnectionFailed", systems_tried=1)]
    entry = systems_entry(failovers[0], t=1.5)
    assert isinstance(entry, FailoverReadEvent)
    assert parse_line(entry.model_dump_json()) == entry
    assert EMPI_VALUE not in entry.model_dump_json()


def test_an_open_breaker_fails_over_without_sending_to_the_primary() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        epic = systems["epic"]
        epic.fhir_outage(status=503)
        served = []
        for _ in range(6):  # 3 attempts each: enough failures for the breaker's window to open it
            served.append((await reader.read_patient("epic", ids["epic"], KEY)).passed_over[0].reason)
        sent_before = epic.counter.total
        last = await reader.read_patient("epic", ids["epic"], KEY)
        return served, last, epic.counter.total - sent_before, reader.registry.status()

    (reasons, last, sent_to_primary, status), events, _, _ = _run(("epic", "cerner"), scenario)
    assert [(s.system_id, s.available) for s in status] == [("epic", False), ("cerner", True)]
    opened = [e for e in events if isinstance(e, BreakerTransitioned) and e.to_state is BreakerState.OPEN]
    assert [e.name for e in opened] == ["epic"]
    assert reasons[0] == "ServerError"
    assert reasons[-1] == "CircuitOpen"
    assert last.system_id == "cerner"
    assert last.passed_over == (Attempt("epic", "CircuitOpen"),)
    assert sent_to_primary == 0


def test_an_answer_from_the_primary_is_not_failed_over() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        with pytest.raises(NotFound):
            await reader.read_patient("epic", "eUnknownPatientId0000003", KEY)
        return None

    _, events, _, systems = _run(("epic", "cerner"), scenario)
    assert not [e for e in events if isinstance(e, ReadFailedOver | ReadFailoverExhausted)]
    assert systems["cerner"].counter.total == 0


def test_fallbacks_that_do_not_hold_exactly_one_match_are_passed_over() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        systems["medplum"].seed(PATIENT)  # medplum now holds two patients with the identifier
        systems["epic"].fhir_outage("drop")
        return await reader.read_patient("epic", ids["epic"], KEY, fallbacks=["allscripts", "medplum", "cerner"])

    result, events, ids, _ = _run(("epic", "allscripts", "medplum", "cerner"), scenario,
                                  seed_in=("epic", "medplum", "cerner"))
    assert result.system_id == "cerner"
    assert result.resource.id == ids["cerner"]
    assert result.passed_over == (Attempt("epic", "ConnectionFailed"), Attempt("allscripts", "not_found"),
                                  Attempt("medplum", "ambiguous"))
    assert [e.systems_tried for e in events if isinstance(e, ReadFailedOver)] == [3]


def test_when_no_system_can_serve_the_read_failover_is_exhausted() -> None:
    async def scenario(reader: FailoverReader, systems: dict[str, LabSystem], ids: dict[str, str]) -> Any:
        systems["epic"].fhir_outage("drop")
        systems["cerner"].fhir_outage(status=503)
        with pytest.raises(FailoverExhausted) as caught:
            await reader.read_patient("epic", ids["epic"], KEY)
        return caught.value

    error, events, _, _ = _run(("epic", "cerner", "medplum"), scenario, seed_in=("epic", "cerner"))
    assert error.attempts == (Attempt("epic", "ConnectionFailed"), Attempt("cerner", "ServerError"),
                              Attempt("medplum", "not_found"))
    assert isinstance(error.__cause__, ConnectionFailed)
    assert EMPI_VALUE not in str(error)
    exhausted = [e for e in events if isinstance(e, ReadFailoverExhausted)]
    assert exhausted == [ReadFailoverExhausted(resource_type="Patient", primary="epic",
                                               systems=("epic", "cerner", "medplum"),
                                               reasons=("ConnectionFailed", "ServerError", "not_found"))]
    entry = systems_entry(exhausted[0], t=0.0)
    assert isinstance(entry, FailoverExhaustedEvent)
    assert parse_line(entry.model_dump_json()) == entry


class _IgnoresIdentifier:
    """A server that ignores the identifier parameter (Epic's 4122 warning) and returns everyone."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self._resources = tuple(FhirResource(resource_type="Patient", id=f"p{i}", version_id="1", etag=None, body=b)
                                for i, b in enumerate(bodies))
        self.params: list[SearchParams | None] = []

    async def read(self, resource_type: str, id: str) -> FhirResource:
        raise AssertionError("not used")

    async def search(self, resource_type: str, params: SearchParams | None = None) -> BundlePage:
        self.params.append(params)
        return BundlePage(resources=self._resources, outcomes=(), total=None, next_url=None)


def test_find_patients_keeps_only_patients_that_carry_the_identifier() -> None:
    other = {"resourceType": "Patient", "identifier": [{"system": EMPI, "value": "EMPI-999999"}]}
    server = _IgnoresIdentifier(other, PATIENT)
    found = run_virtual(lambda: find_patients(server, KEY))
    assert [r.id for r in found] == ["p1"]
    assert server.params == [{"identifier": f"{EMPI}|{EMPI_VALUE}"}]


def test_identifier_search_token_is_escaped_and_its_value_never_in_a_repr() -> None:
    odd = Identifier("urn:x|y", "a,b$c\\d")
    assert odd.search_token() == "urn:x\\|y|a\\,b\\$c\\\\d"
    assert "a,b" not in repr(odd)
    assert EMPI_VALUE not in repr(KEY)
    with pytest.raises(ValueError, match="system and a value"):
        Identifier(EMPI, " ")


@pytest.mark.parametrize(("error", "fails_over"), [
    (CircuitOpen("open", vendor="x"), True),
    (ServerError("503", vendor="x", status=503), True),
    (RequestTimeout("slow", vendor="x"), True),
    (RateLimited("429", vendor="x", status=429), True),
    (ServerError("token endpoint down", vendor="x", status=503, token_endpoint=True), True),
    (AuthError("bad credentials", vendor="x", status=401, token_endpoint=True), False),
    (NotFound("404", vendor="x", status=404), False),
    (Forbidden("403", vendor="x", status=403), False),
])
def test_failover_only_when_the_primary_could_not_answer(error: ConnectorError, fails_over: bool) -> None:
    assert unavailable(error) is fails_over
