"""Seeded synthetic clinical data: patients with encounters, observations, medication requests, conditions.

`seed_population(store, rng, clock, patients=n)` writes `n` patients, each with a few encounters and,
per encounter, vital-sign observations (LOINC), possibly a condition (SNOMED CT) and a medication
request (RxNorm). Names and addresses come from Faker (`en_US`), seeded from `rng`; every other
choice also comes from `rng`, and every date is relative to `clock.now()`, so the same seed and clock
give the same data, id for id (ids come from the store's own factory).

Codes are a small fixed catalogue of real codes, enough for `code=` searches to mean something.
All data is fictional; nothing here is PHI.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from integrations.clock import Clock
from simulators.fhir.store import ResourceStore, format_instant

if TYPE_CHECKING:
    from faker import Faker

#: Oldest seeded patient, in years.
MAX_AGE_YEARS = 95
#: Identifier system of the synthetic MRNs.
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.99999.1"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

# (LOINC code, display, unit, low, high)
VITALS: tuple[tuple[str, str, str, float, float], ...] = (
    ("8867-4", "Heart rate", "/min", 50, 110),
    ("8310-5", "Body temperature", "Cel", 36.0, 38.5),
    ("29463-7", "Body weight", "kg", 45, 120),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 160),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 180),
)
CONDITIONS: tuple[tuple[str, str], ...] = (
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("195967001", "Asthma"),
    ("55822004", "Hyperlipidemia"),
    ("40055000", "Chronic sinusitis"),
)
MEDICATIONS: tuple[tuple[str, str], ...] = (
    ("860975", "metformin hydrochloride 500 MG Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("895994", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
    ("617312", "atorvastatin 10 MG Oral Tablet"),
)
ENCOUNTER_CLASSES = (("AMB", "ambulatory"), ("EMER", "emergency"), ("IMP", "inpatient encounter"))


@dataclass(frozen=True, slots=True)
class SeededPatient:
    id: str
    encounters: tuple[str, ...] = ()
    observations: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    medication_requests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Population:
    """What `seed_population` wrote, by patient, in creation order."""

    patients: tuple[SeededPatient, ...] = field(default=())

    @property
    def patient_ids(self) -> list[str]:
        return [patient.id for patient in self.patients]

    def resource_count(self) -> int:
        return sum(1 + len(p.encounters) + len(p.observations) + len(p.conditions) + len(p.medication_requests)
                   for p in self.patients)


def _faker(rng: random.Random) -> Faker:
    from faker import Faker  # imported on first use: it is slow to import

    fake = Faker("en_US")
    fake.seed_instance(rng.getrandbits(64))
    return fake


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def seed_population(store: ResourceStore, rng: random.Random, clock: Clock, patients: int, *,
                    max_encounters: int = 3) -> Population:
    """Write `patients` synthetic patients and their clinical records into `store`."""
    if patients < 0:
        raise ValueError("patients must not be negative")
    if max_encounters < 0:
        raise ValueError("max_encounters must not be negative")
    if patients == 0:
        return Population()
    fake = _faker(rng)
    now = clock.now()
    return Population(tuple(_one_patient(store, rng, fake, now, max_encounters) for _ in range(patients)))


def _one_patient(store: ResourceStore, rng: random.Random, fake: Faker, now: datetime,
                 max_encounters: int) -> SeededPatient:
    gender = rng.choice(("female", "male"))
    given = fake.first_name_female() if gender == "female" else fake.first_name_male()
    birth_date = now.date() - timedelta(days=rng.randint(0, MAX_AGE_YEARS * 365))
    patient = store.create({
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": f"MRN{rng.randint(0, 10**8 - 1):08d}"}],
        "active": True,
        "name": [{"use": "official", "family": fake.last_name(), "given": [given]}],
        "gender": gender,
        "birthDate": birth_date.isoformat(),
        "address": [{"use": "home", "line": [fake.street_address()], "city": fake.city(),
                     "state": fake.state_abbr(), "postalCode": fake.postcode(), "country": "US"}],
    })
    subject = _ref("Patient", patient["id"])
    encounters: list[str] = []
    observations: list[str] = []
    conditions: list[str] = []
    medications: list[str] = []
    for _ in range(rng.randint(1, max_encounters) if max_encounters else 0):
        start = now - timedelta(days=rng.randint(1, 3 * 365), minutes=rng.randint(0, 600))
        end = start + timedelta(minutes=rng.randint(15, 240))
        klass, klass_display = rng.choice(ENCOUNTER_CLASSES)
        encounter = store.create({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass,
                      "display": klass_display},
            "subject": subject,
            "period": {"start": format_instant(start), "end": format_instant(end)},
        })
        encounters.append(encounter["id"])
        context = _ref("Encounter", encounter["id"])
        for code, display, unit, low, high in rng.sample(VITALS, rng.randint(1, 3)):
            value = round(rng.uniform(low, high), 1)
            observations.append(store.create({
                "resourceType": "Observation", "status": "final",
                "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs",
                                     "Vital Signs")],
                "code": _coding(LOINC, code, display), "subject": subject, "encounter": context,
                "effectiveDateTime": format_instant(start + timedelta(minutes=5)),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            })["id"])
        if rng.random() < 0.5:
            code, display = rng.choice(CONDITIONS)
            conditions.append(store.create({
                "resourceType": "Condition",
                "clinicalStatus": _coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active",
                                          "Active"),
                "code": _coding(SNOMED, code, display), "subject": subject, "encounter": context,
                "recordedDate": format_instant(start),
            })["id"])
        if rng.random() < 0.4:
            code, display = rng.choice(MEDICATIONS)
            medications.append(store.create({
                "resourceType": "MedicationRequest", "status": rng.choice(("active", "completed")),
                "intent": "order", "medicationCodeableConcept": _coding(RXNORM, code, display),
                "subject": subject, "encounter": context, "authoredOn": format_instant(end),
            })["id"])
    return SeededPatient(patient["id"], tuple(encounters), tuple(observations), tuple(conditions),
                         tuple(medications))
