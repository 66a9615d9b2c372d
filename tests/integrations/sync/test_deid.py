"""No PHI reaches Medplum (runbook 002 §3.1, §10.1 "Holi NEVER sends PHI to Medplum"): a property test over
generated patients and records whose free text is full of names, phone numbers, addresses and birth dates,
checked against what the Medplum simulator stored; and proof that the check catches a leaky mapping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.clock import run_virtual
from integrations.fhir.models import JsonObject
from integrations.sync import EncounterDetails, ObservationDetails, deid, phi_violations
from tests.integrations.sync.support import ORG, SyncLab, leaks, patient_problems, sync_lab

NAMES = ("Jane Doe", "Carlos Mendez", "Aiko Tanaka", "Ngozi Okafor", "John Q. Public")
STREETS = ("12 Elm Street", "221B Baker Street", "4 Privet Drive")

tokens = st.from_regex(r"pt_[A-Za-z0-9]{1,20}", fullmatch=True)
phones = st.from_regex(r"\+1-555-[0-9]{4}", fullmatch=True)
birth_dates = st.dates().map(lambda d: d.isoformat())


@dataclass(frozen=True)
class Example:
    token: str
    name: str
    phone: str
    street: str
    birth: str
    encounters: int
    observations: int
    value: float

    @property
    def note(self) -> str:
        return f"{self.name} (DOB {self.birth}) called from {self.phone}, lives at {self.street}"

    @property
    def phi(self) -> tuple[str, ...]:
        return (self.name, self.phone, self.street, self.note)


examples = st.builds(Example, token=tokens, name=st.sampled_from(NAMES), phone=phones,
                     street=st.sampled_from(STREETS), birth=birth_dates, encounters=st.integers(0, 2),
                     observations=st.integers(0, 2),
                     value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False))
patients = st.lists(examples, min_size=1, max_size=3, unique_by=lambda e: e.token.lower())


async def _run(lab: SyncLab, people: list[Example]) -> None:
    for person in people:
        lab.patient(person.token)
        for _ in range(person.encounters):
            await lab.store.create_encounter(ORG, person.token, EncounterDetails(reason_code="Z00.00",
                                                                                 notes=person.note))
        for _ in range(person.observations):
            await lab.store.create_observation(ORG, person.token, ObservationDetails(
                code="8310-5", value=person.value, unit="Cel", notes=person.note))
        if person.encounters + person.observations == 0:  # still send the Patient once
            await lab.store.create_encounter(ORG, person.token, EncounterDetails(notes=person.note))
    await lab.drain()


def _problems(lab: SyncLab, people: list[Example]) -> Iterator[str]:
    by_id = {deid.fhir_id(p.token): p for p in people}
    stored_patients = lab.medplum("Patient")
    if sorted(p["id"] for p in stored_patients) != sorted(by_id):
        yield "patients missing"
    for patient in stored_patients:
        person = by_id.get(patient["id"])
        token = person.token if person else "pt_?"
        yield from (f"Patient.{p}" for p in patient_problems(patient, token))
    for resource_type in ("Encounter", "Observation"):
        for resource in lab.medplum(resource_type):
            if resource["subject"]["reference"] not in {f"Patient/{i}" for i in by_id}:
                yield f"{resource_type}.subject"
    everything = [json.dumps(r) for t in ("Patient", "Encounter", "Observation") for r in lab.medplum(t)]
    everything += [s.body.decode("utf-8", "replace") for s in lab.recorder.sent]
    for person in people:
        yield from (f"leaked {phi!r}" for phi in leaks(everything, person.phi))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=patients)
def test_no_patient_reaching_medplum_carries_phi(people: list[Example]) -> None:
    async def main() -> list[str]:
        async with sync_lab() as lab:
            await _run(lab, people)
            assert (await lab.queue.stats()).failed == 0
            return list(_problems(lab, people))

    assert run_virtual(main) == []


PERSON = Example(token="pt_leak42", name="Jane Doe", phone="+1-555-0142", street="12 Elm Street",
                 birth="1984-03-07", encounters=1, observations=1, value=37.2)


_CLEAN_PATIENT = deid.patient_resource
_CLEAN_RECORD = deid.record_resource


def _leaky_patient(token: str, uri: str) -> JsonObject:
    patient = _CLEAN_PATIENT(token, uri)
    patient.update(name=[{"text": PERSON.name, "family": "Doe", "given": ["Jane"]}],
                   telecom=[{"system": "phone", "value": PERSON.phone}], birthDate=PERSON.birth,
                   address=[{"line": [PERSON.street]}])
    return patient


def _leaky_record(record: Any) -> JsonObject:
    resource = _CLEAN_RECORD(record)
    resource["note"] = [{"text": record.details.notes}]
    return resource


def test_the_check_catches_a_mapping_that_is_not_de_identified(monkeypatch: pytest.MonkeyPatch) -> None:
    # Break the mapping and switch off the worker's own guard: the test's check must then fail.
    monkeypatch.setattr(deid, "patient_resource", _leaky_patient)
    monkeypatch.setattr(deid, "phi_violations", lambda patient: [])
    monkeypatch.setattr(deid, "record_resource", _leaky_record)

    async def main() -> list[str]:
        async with sync_lab() as lab:
            await _run(lab, [PERSON])
            return list(_problems(lab, [PERSON]))

    problems = run_virtual(main)
    assert {"Patient.telecom", "Patient.address", "Patient.birthDate", "Patient.name"} <= set(problems)
    assert f"leaked {PERSON.note!r}" in problems


def test_the_worker_refuses_a_patient_mapping_with_phi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deid, "patient_resource", _leaky_patient)

    async def main() -> None:
        async with sync_lab() as lab:
            await _run(lab, [PERSON])
            failed = await lab.queue.failed_jobs()
            assert len(failed) == 2
            assert all(j.attempts_made == 1 for j in failed)
            assert lab.medplum("Patient") == []
            assert lab.recorder.puts("/fhir/R4/") == []

    run_virtual(main)


def test_phi_violations_names_elements_not_values() -> None:
    clean = deid.patient_resource("pt_abc123", "s3://bucket/x")
    assert phi_violations(clean) == []
    assert clean["name"] == [{"text": "Patient [ABC]", "family": "***", "given": ["***"]}]
    assert clean["id"] == "pt-abc123"
    assert "telecom" not in clean
    assert "birthDate" not in clean
    dirty = _leaky_patient("pt_abc123", "s3://bucket/x")
    assert sorted(phi_violations(dirty)) == ["address", "birthDate", "name", "telecom"]
    with pytest.raises(ValueError, match="patient token"):
        deid.patient_resource("Jane Doe", "s3://bucket/x")


def test_clinical_codes_cannot_carry_free_text() -> None:
    with pytest.raises(ValueError, match="code"):
        ObservationDetails(code="Jane Doe +1-555-0142")
    with pytest.raises(ValueError, match="unit"):
        ObservationDetails(code="8310-5", unit="call Jane")
    with pytest.raises(ValueError, match="reason_code"):
        EncounterDetails(reason_code="lives at 12 Elm Street")
