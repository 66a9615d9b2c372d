"""Build a Medplum simulator: the FastAPI app, its chaos layer, store, tokens and seed data.

Randomness: `create_medplum` splits the rng it is given into independent streams, in a fixed order
(store ids and versions, access tokens, chaos decisions, seed data, project id), so e.g. a chaos
decision never shifts the next resource id or token, and the same seed gives the same ids and tokens.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from integrations.clock import Clock
from simulators.chaos import ChaosMiddleware, ChaosState, chaos_admin_router
from simulators.fhir.outcome import install_outcome_handlers
from simulators.fhir.store import ResourceStore, rng_uuid, uuid_ids, uuid_versions
from simulators.medplum.auth import TokenStore, oauth_router
from simulators.medplum.fhir_api import fhir_router
from simulators.medplum.settings import MedplumSettings

if TYPE_CHECKING:
    from faker import Faker
    from starlette.types import ASGIApp

#: Oldest seeded patient, in years.
MAX_AGE_YEARS = 95


def _fork(rng: random.Random) -> random.Random:
    return random.Random(rng.getrandbits(64))


class MedplumSimulator:
    """One fake Medplum server. `app` is the ASGI app to serve or mount (chaos outermost)."""

    def __init__(self, *, app: ASGIApp, chaos: ChaosState, store: ResourceStore, tokens: TokenStore,
                 settings: MedplumSettings, clients: dict[str, str], project_id: str, clock: Clock,
                 seed_rng: random.Random) -> None:
        self.app = app
        self.chaos = chaos
        self.store = store
        self.tokens = tokens
        self.settings = settings
        self.clients = clients  # client_id -> secret, read per token request
        self.project_id = project_id
        self._clock = clock
        self._seed_rng = seed_rng
        self._faker: Faker | None = None

    def __repr__(self) -> str:
        return f"MedplumSimulator(project_id={self.project_id!r}, clients={sorted(self.clients)!r})"

    def seed_patients(self, n: int) -> list[str]:
        """Create `n` synthetic patients (name, gender, birthDate) and return their ids, in order."""
        if n < 0:
            raise ValueError("n must not be negative")
        fake = self._fake()
        today = self._clock.now().date()
        ids: list[str] = []
        for _ in range(n):
            gender = self._seed_rng.choice(("female", "male"))
            given = fake.first_name_female() if gender == "female" else fake.first_name_male()
            birth_date = today - timedelta(days=self._seed_rng.randint(0, MAX_AGE_YEARS * 365))
            patient = {
                "resourceType": "Patient",
                "active": True,
                "name": [{"use": "official", "family": fake.last_name(), "given": [given]}],
                "gender": gender,
                "birthDate": birth_date.isoformat(),
            }
            ids.append(self.store.create(patient)["id"])
        return ids

    def _fake(self) -> Faker:
        if self._faker is None:
            from faker import Faker  # imported on first use: it is slow to import

            self._faker = Faker("en_US")
            self._faker.seed_instance(self._seed_rng.getrandbits(64))
        return self._faker


def _health_router(settings: MedplumSettings) -> APIRouter:
    router = APIRouter()
    body = {"ok": True, "version": settings.version, "platform": settings.platform, "runtime": settings.runtime,
            "postgres": True, "redis": True}

    @router.get("/healthcheck")
    async def healthcheck() -> JSONResponse:
        return JSONResponse(body)

    return router


def create_medplum(settings: MedplumSettings, clock: Clock, rng: random.Random) -> MedplumSimulator:
    """A Medplum simulator on `clock`, all of whose randomness comes from `rng`."""
    store_rng, token_rng, chaos_rng, seed_rng, project_rng = (_fork(rng) for _ in range(5))
    project_id = settings.project_id or rng_uuid(project_rng)
    clients = {client_id: secret.get_secret_value() for client_id, secret in settings.clients.items()}
    store = ResourceStore(clock, new_id=uuid_ids(store_rng), new_version=uuid_versions(store_rng))
    tokens = TokenStore(clock, token_rng, settings.token_lifetime_s)
    chaos = ChaosState()

    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_outcome_handlers(api)
    api.include_router(oauth_router(clients, tokens, project_id))
    api.include_router(_health_router(settings))
    api.include_router(fhir_router(store, tokens, settings.resource_types))
    api.include_router(chaos_admin_router(chaos, settings.admin_token.get_secret_value()))
    app = ChaosMiddleware(api, chaos, clock, chaos_rng)
    return MedplumSimulator(app=app, chaos=chaos, store=store, tokens=tokens, settings=settings, clients=clients,
                            project_id=project_id, clock=clock, seed_rng=seed_rng)
