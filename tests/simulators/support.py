"""Shared helpers for the simulator tests: a Medplum simulator and an in-process client for it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from harness.clock import VirtualClock
from integrations.clock import Clock
from simulators.medplum import MedplumSettings, MedplumSimulator, create_medplum
from simulators.transport import VirtualTransport

CLIENT_ID = "ehrlab-test-client"
CLIENT_SECRET = "s3cret-value-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"
BASE_URL = "http://medplum.test"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_medplum(seed: int = 7, clock: Clock | None = None, **settings: Any) -> MedplumSimulator:
    config = MedplumSettings(clients={CLIENT_ID: CLIENT_SECRET}, admin_token=ADMIN_TOKEN, **settings)
    return create_medplum(config, clock or VirtualClock(), random.Random(seed))


@asynccontextmanager
async def client_for(sim: MedplumSimulator, base_url: str = BASE_URL) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=VirtualTransport(sim.app), base_url=base_url) as client:
        yield client


async def get_token(client: httpx.AsyncClient) -> str:
    response = await client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female",
            "birthDate": "1980-02-03", **fields}
