"""Workload operations: what a clinician-facing integration does against a vendor, one call each.

An operation gets an `OperationContext` (the vendor's connector, the seeded patients, its stream's
RNG) and raises a `ConnectorError` when the integration fails, or a `WorkloadError` when the
integration answered but the answer is wrong (a paged search missing or repeating patients).
Register new ones in `OPERATIONS`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from integrations.fhir import FhirConnector, FhirResource
from integrations.fhir.models import JsonValue
from integrations.sync import EncounterDetails, ObservationDetails
from integrations.sync.models import Requester, Role

if TYPE_CHECKING:
    from harness.failover_layer import FailoverLayer
    from harness.pipeline import Pipeline
    from harness.resilience_layer import ResilientVendor


class WorkloadError(Exception):
    """The integration answered, but not what its user needed (journaled by class name, like connector errors,
    unless a subclass names its `code`: `harness.sut.http.SutHttpError` journals `HTTP<status>`)."""

    @property
    def code(self) -> str:
        return type(self).__name__


class PagingIncomplete(WorkloadError):
    """A paged search did not deliver every seeded patient exactly once."""


@dataclass(frozen=True, slots=True)
class OperationContext:
    connector: FhirConnector
    patients: list[str]
    rng: random.Random
    pipeline: Pipeline | None = None
    resilient: ResilientVendor | None = None
    failover: FailoverLayer | None = None

    def patient(self) -> str:
        return self.patients[self.rng.randrange(len(self.patients))]

    def sync(self) -> tuple[Pipeline, str]:
        """The lab's sync pipeline and one of its patient tokens (the scenario model requires `setup.sync`)."""
        if self.pipeline is None:
            raise RuntimeError("this operation needs setup.sync")
        return self.pipeline, self.pipeline.tokens[self.rng.randrange(len(self.pipeline.tokens))]


async def read_patient(ctx: OperationContext) -> None:
    """Open a chart: read one Patient."""
    await ctx.connector.read("Patient", ctx.patient())


async def search_patient(ctx: OperationContext) -> None:
    """Find a patient by id (a searchset Bundle)."""
    await ctx.connector.search("Patient", {"_id": ctx.patient()})


def _heart_rate(ctx: OperationContext) -> dict[str, JsonValue]:
    """A heart-rate vital sign for one of the seeded patients."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{ctx.patient()}"},
        "valueQuantity": {"value": ctx.rng.randint(55, 110), "unit": "beats/minute",
                          "system": "http://unitsofmeasure.org", "code": "/min"},
    }


async def create_observation(ctx: OperationContext) -> None:
    """Record a heart-rate vital sign for a patient (a non-idempotent POST: never retried)."""
    await ctx.connector.create(_heart_rate(ctx))


async def update_patient(ctx: OperationContext) -> None:
    """Read-modify-write a Patient with If-Match on the version read (a conditional update)."""
    current = await ctx.connector.read("Patient", ctx.patient())
    body = dict(current.body)
    body["active"] = not bool(body.get("active", True))
    await ctx.connector.update(body, if_match=current.version_id)


async def list_patients(ctx: OperationContext) -> None:
    """A worklist: every patient, five per page, following `next` links (a token may expire mid-way)."""
    results = await ctx.connector.search_all("Patient", {"_count": "5"})
    ids = [r.id for r in results.resources]
    if not results.complete or results.duplicates or len(set(ids)) != len(ids) or set(ids) != set(ctx.patients):
        raise PagingIncomplete(f"{len(set(ids))} of {len(ctx.patients)} patients, {results.duplicates} duplicates")


async def update_patient_merge(ctx: OperationContext) -> None:
    """Read-modify-write a Patient; on a stale version (412, or Cerner's 409) re-read and re-apply the change."""
    current = await ctx.connector.read("Patient", ctx.patient())

    def toggle(resource: FhirResource) -> dict[str, JsonValue]:
        body = dict(resource.body)
        body["active"] = not bool(body.get("active", True))
        return body

    await ctx.connector.update(toggle(current), if_match=current.version_id, on_conflict=toggle)


async def record_encounter(ctx: OperationContext) -> None:
    """A clinician closes an ambulatory encounter in the application: stored at once, synced by the queue
    (002 §2.3: the write never waits for Medplum)."""
    pipeline, token = ctx.sync()
    await pipeline.wired.store.create_encounter(pipeline.org, token, EncounterDetails(status="finished",
                                                                                     class_code="AMB"))


async def record_observation(ctx: OperationContext) -> None:
    """A body temperature recorded in the application (LOINC 8310-5), synced by the queue."""
    pipeline, token = ctx.sync()
    value = round(ctx.rng.uniform(36.1, 38.4), 1)
    await pipeline.wired.store.create_observation(pipeline.org, token, ObservationDetails(
        code="8310-5", value=value, unit="Cel"))


async def export_patient(ctx: OperationContext) -> None:
    """An administrator exports a patient's records from Medplum (002 §6.2), consent and RBAC checked."""
    pipeline, token = ctx.sync()
    exporter = pipeline.wired.components.exporter
    assert exporter is not None  # wire_service always wires one
    await exporter.export_everything(token, Requester(user_id="u_lab_admin", org_id=pipeline.org, role=Role.ADMIN))


async def open_chart(ctx: OperationContext) -> None:
    """A clinician opens a chart through the resilience layer (000 §2): the provider, or while it is down the
    cached patient context (degraded, still an answer); `EhrUnavailable` when nothing is cached."""
    if ctx.resilient is None:
        raise RuntimeError("open_chart needs the vendor in setup.resilience")
    await ctx.resilient.client.read("Patient", ctx.patient())


async def record_vitals(ctx: OperationContext) -> None:
    """A heart rate written to the EHR through the resilience layer: refused (`WritesDisabled`) while the
    vendor's write flag is off (000 §3, §8); never served from a cache."""
    if ctx.resilient is None:
        raise RuntimeError("record_vitals needs the vendor in setup.resilience")
    await ctx.resilient.client.create(_heart_rate(ctx))


async def read_patient_failover(ctx: OperationContext) -> None:
    """Read a shared patient by the primary system's id; when the primary is unavailable the registry finds
    the same patient (EMPI identifier) at a fallback system (004 "automatic failover")."""
    if ctx.failover is None:
        raise RuntimeError("read_patient_failover needs setup.failover")
    layer = ctx.failover
    shared = layer.patients[ctx.rng.randrange(len(layer.patients))]
    await layer.reader.read_patient(layer.system_id(layer.primary), shared.ids[layer.primary], shared.identifier)


#: Operations that go through a vendor's resilience layer (`setup.resilience`).
RESILIENT_OPERATIONS = frozenset({"open_chart", "record_vitals"})

#: Operations that act on the sync pipeline (`setup.sync`), not on a vendor connector directly.
PIPELINE_OPERATIONS = frozenset({"record_encounter", "record_observation", "export_patient"})

Operation = Callable[[OperationContext], Awaitable[None]]
OPERATIONS: dict[str, Operation] = {
    "read_patient": read_patient,
    "search_patient": search_patient,
    "create_observation": create_observation,
    "update_patient": update_patient,
    "update_patient_merge": update_patient_merge,
    "list_patients": list_patients,
    "record_encounter": record_encounter,
    "record_observation": record_observation,
    "export_patient": export_patient,
    "open_chart": open_chart,
    "record_vitals": record_vitals,
    "read_patient_failover": read_patient_failover,
}
