"""The integration service under load: an EHR posting resources to ingress (`/fhir/inbound/*`), clinicians
exporting a patient's record (`$everything`, which goes through the connector to Medplum), and an operator
watching the sync queue (`/fhir/admin/queue/stats`)."""

from __future__ import annotations

import json
import random

from locust import FastHttpUser, between, task

from loadtests import common, shapes


def _caller() -> dict[str, str]:
    return {"Authorization": f"Bearer {common.env('EHRLAB_SERVICE_API_KEY')}",
            "X-Org-ID": common.env("EHRLAB_SERVICE_ORG", "org_demo"), "Content-Type": "application/fhir+json"}


class EhrIngress(FastHttpUser):
    host = common.env("EHRLAB_SERVICE_URL", "http://127.0.0.1:5057")
    wait_time = between(0.1, 0.3)
    weight = 4

    def on_start(self) -> None:
        self.patients = common.env_list("EHRLAB_SERVICE_PATIENTS") or ["unknown"]
        self.headers = _caller()

    @task(3)
    def observation(self) -> None:
        token = random.choice(self.patients)
        body = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                "subject": {"reference": f"Patient/{token}"}, "effectiveDateTime": "2024-01-15T10:00:00Z",
                "valueQuantity": {"value": round(random.uniform(36.1, 38.0), 1), "unit": "Cel"}}
        self.client.post("/fhir/inbound/observation", data=json.dumps(body), headers=self.headers,
                         name="inbound/observation")

    @task(1)
    def encounter(self) -> None:
        token = random.choice(self.patients)
        body = {"resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{token}"}, "period": {"start": "2024-01-15T09:00:00Z"}}
        self.client.post("/fhir/inbound/encounter", data=json.dumps(body), headers=self.headers,
                         name="inbound/encounter")


class ClinicianExport(FastHttpUser):
    host = common.env("EHRLAB_SERVICE_URL", "http://127.0.0.1:5057")
    wait_time = between(0.2, 0.5)
    weight = 2

    def on_start(self) -> None:
        self.patients = common.env_list("EHRLAB_SERVICE_PATIENTS") or ["unknown"]
        self.headers = {**_caller(), "X-User-ID": "load-clinician", "X-Role": "ADMIN"}

    @task
    def everything(self) -> None:
        self.client.get(f"/fhir/export/patient/{random.choice(self.patients)}/$everything", headers=self.headers,
                        name="export/patient/[token]/$everything")


class QueueOperator(FastHttpUser):
    host = common.env("EHRLAB_SERVICE_URL", "http://127.0.0.1:5057")
    wait_time = between(0.5, 1.0)
    weight = 1

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {common.env('EHRLAB_SERVICE_OPERATOR_TOKEN')}"}

    @task
    def queue_stats(self) -> None:
        self.client.get("/fhir/admin/queue/stats", headers=self.headers, name="admin/queue/stats")


EhrlabShape = shapes.selected()
