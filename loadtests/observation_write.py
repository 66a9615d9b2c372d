"""Write traffic straight at a simulator: vital-sign Observations created for seeded patients."""

from __future__ import annotations

import json
import random

from locust import FastHttpUser, between, task

from loadtests import common, shapes


def observation(patient_id: str) -> str:
    return json.dumps({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2024-01-15T10:00:00Z",
        "valueQuantity": {"value": round(random.uniform(36.1, 38.0), 1), "unit": "Cel",
                          "system": "http://unitsofmeasure.org", "code": "Cel"},
    })


class ObservationWriter(FastHttpUser):
    host = common.env("EHRLAB_FHIR_URL", "http://127.0.0.1:8080")
    wait_time = between(0.1, 0.3)
    weight = 1

    def on_start(self) -> None:
        self.fhir = common.env("EHRLAB_FHIR_PATH", "/fhir/R4")
        self.headers = {"Authorization": f"Bearer {common.fetch_token(self.client)}",
                        "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        self.patients = common.patient_ids(self.client, self.headers, self.fhir)

    @task
    def record_vitals(self) -> None:
        self.client.post(f"{self.fhir}/Observation", data=observation(random.choice(self.patients)),
                         headers=self.headers, name="Observation (create)")


EhrlabShape = shapes.selected()
