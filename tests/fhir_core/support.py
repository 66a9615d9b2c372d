"""Helpers for the FHIR core tests: a bare FastAPI app around `fhir_router` with any personality.

`core_app(personality)` mounts the core at `/fhir` behind an authorizer that names the caller from the
`X-Client` header (default "tester"), refuses `X-Refuse: 403`, and records every interaction the core
reports, so tests see both the HTTP answer and what the vendor hook was told.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from starlette.requests import Request

from harness.clock import VirtualClock, run_virtual
from simulators.fhir import (
    FhirPersonality,
    Interaction,
    OutcomeError,
    ResourceStore,
    fhir_router,
    install_outcome_handlers,
    operation_outcome,
    store_for,
)
from simulators.transport import VirtualTransport

T = TypeVar("T")
BASE = "http://fhir.test"
PREFIX = "/fhir"
PLAIN = FhirPersonality(name="plain")


@dataclass
class Core:
    app: FastAPI
    store: ResourceStore
    clock: VirtualClock
    calls: list[tuple[str, Interaction, str, str | None, int]] = field(default_factory=list)


def core_app(personality: FhirPersonality = PLAIN, *, seed: int = 1, clock: VirtualClock | None = None) -> Core:
    clock = clock or VirtualClock()
    rng = random.Random(seed)
    store = store_for(personality, clock, random.Random(rng.getrandbits(64)))
    core = Core(FastAPI(), store, clock)

    async def authorize(request: Request, resource_type: str, interaction: Interaction) -> str:
        if request.headers.get("x-refuse") == "403":
            raise OutcomeError(403, operation_outcome("forbidden", "Forbidden"))
        return request.headers.get("x-client", "tester")

    def hook(client: str, interaction: Interaction, resource_type: str, resource_id: str | None, status: int) -> None:
        core.calls.append((client, interaction, resource_type, resource_id, status))

    install_outcome_handlers(core.app)
    core.app.include_router(fhir_router(store=store, personality=personality, clock=clock,
                                        rng=random.Random(rng.getrandbits(64)), authorize=authorize,
                                        on_interaction=hook), prefix=PREFIX)
    return core


@asynccontextmanager
async def client_for(core: Core, base_url: str = BASE) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=VirtualTransport(core.app), base_url=base_url + PREFIX) as client:
        yield client


def run(scenario: Callable[[Core, httpx.AsyncClient], Awaitable[T]], personality: FhirPersonality = PLAIN, *,
        base_url: str = BASE) -> T:
    """Run `scenario(core, client)` on a fresh core in virtual time."""
    async def main() -> T:
        core = core_app(personality)
        async with client_for(core, base_url) as client:
            return await scenario(core, client)

    return run_virtual(main)


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female",
            "birthDate": "1980-02-03", **fields}


def observation(subject: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{subject}"}, **fields}


def outcome_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert `response` is `status` with an OperationOutcome body, and return the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json"), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    return dict(body)
