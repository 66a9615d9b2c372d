"""Workload operations: what a clinician-facing integration does against a vendor, one call each.

An operation gets an `OperationContext` (the vendor's connector, the seeded patients, its stream's
RNG) and raises a `ConnectorError` when the integration fails. Register new ones in `OPERATIONS`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from integrations.fhir import FhirConnector


@dataclass(frozen=True, slots=True)
class OperationContext:
    connector: FhirConnector
    patients: list[str]
    rng: random.Random

    def patient(self) -> str:
        return self.patients[self.rng.randrange(len(self.patients))]


async def read_patient(ctx: OperationContext) -> None:
    """Open a chart: read one Patient."""
    await ctx.connector.read("Patient", ctx.patient())


async def search_patient(ctx: OperationContext) -> None:
    """Find a patient by id (a searchset Bundle)."""
    await ctx.connector.search("Patient", {"_id": ctx.patient()})


async def create_observation(ctx: OperationContext) -> None:
    """Record a heart-rate vital sign for a patient (a non-idempotent POST: never retried)."""
    patient = ctx.patient()
    bpm = ctx.rng.randint(55, 110)
    await ctx.connector.create({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": bpm, "unit": "beats/minute", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
    })


async def update_patient(ctx: OperationContext) -> None:
    """Read-modify-write a Patient with If-Match on the version read (a conditional update)."""
    current = await ctx.connector.read("Patient", ctx.patient())
    body = dict(current.body)
    body["active"] = not bool(body.get("active", True))
    await ctx.connector.update(body, if_match=current.version_id)


Operation = Callable[[OperationContext], Awaitable[None]]
OPERATIONS: dict[str, Operation] = {
    "read_patient": read_patient,
    "search_patient": search_patient,
    "create_observation": create_observation,
    "update_patient": update_patient,
}
