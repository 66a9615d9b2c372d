"""Clinician read traffic straight at a simulator: a token once per user, patient reads (the chart
opening), searches that page through `next`, and a patient's observations."""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

from loadtests import common, shapes

MAX_PAGES = 3


class ClinicianReader(FastHttpUser):
    host = common.env("EHRLAB_FHIR_URL", "http://127.0.0.1:8080")
    wait_time = between(0.05, 0.2)
    weight = 3

    def on_start(self) -> None:
        self.fhir = common.env("EHRLAB_FHIR_PATH", "/fhir/R4")
        self.headers = {"Authorization": f"Bearer {common.fetch_token(self.client)}",
                        "Accept": "application/fhir+json"}
        self.patients = common.patient_ids(self.client, self.headers, self.fhir)

    @task(6)
    def read_patient(self) -> None:
        self.client.get(f"{self.fhir}/Patient/{random.choice(self.patients)}", headers=self.headers,
                        name="Patient/[id]")

    @task(2)
    def search_patients(self) -> None:
        url: str | None = f"{self.fhir}/Patient?_count=5"
        for page in range(MAX_PAGES):
            if url is None:
                return
            with self.client.get(url, headers=self.headers, name="Patient?_count=5" + (" (next)" if page else ""),
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")
                    return
                url = common.next_link(response.json())

    @task(2)
    def patient_observations(self) -> None:
        self.client.get(f"{self.fhir}/Observation?patient={random.choice(self.patients)}&_count=10",
                        headers=self.headers, name="Observation?patient=[id]")


EhrlabShape = shapes.selected()
