"""One vendor simulator and the lab's client for it, in process on the virtual clock, built exactly as the
lab builds them (`harness.vendors.VENDORS`), with a transport that records which credential every token
request presented, and the simulator's admin API for rotating credentials (simulators/admin/clients.py)."""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from joserfc.jwk import ECKey, RSAKey

from harness.clock import VirtualClock
from harness.journal import Journal
from harness.rng import RandomSource
from harness.runner import journal_listener
from harness.vendors import VENDORS, LabSecrets, SimulatorHandle, VendorClient
from integrations.events import CredentialRejected, IntegrationEvent
from integrations.fhir import ConnectorError
from simulators.transport import VirtualTransport

TOKEN_PATHS = ("/token", "/GetToken")


@functools.cache
def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS384", "use": "sig"})


@functools.cache
def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid, "alg": "ES384", "use": "sig"})


def presented(request: httpx.Request) -> str | None:
    """The credential a token request carries: the secret, or `kid:<kid>` of a client assertion."""
    body = request.content.decode("utf-8", "replace")
    if request.url.path.endswith("/GetToken"):
        return str(json.loads(body)["Password"])
    form = {k: v[0] for k, v in parse_qs(body).items()}
    if "client_secret" in form:
        return form["client_secret"]
    if "client_assertion" in form:
        header = form["client_assertion"].split(".")[0]
        return "kid:" + json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        return base64.b64decode(encoded).decode().split(":", 1)[1]
    return None


@dataclass
class Sent:
    t: float
    path: str
    credential: str | None  # token requests only


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        token = request.url.path.endswith(TOKEN_PATHS)
        self.sent.append(Sent(self.clock.monotonic(), request.url.path, presented(request) if token else None))
        return await self.inner.handle_async_request(request)

    def token_requests(self, since: float = 0.0) -> list[Sent]:
        return [s for s in self.sent if s.credential is not None and s.t >= since]


@dataclass
class Outcome:
    t: float
    error: str | None  # connector error class name


@dataclass
class VendorLab:
    name: str
    clock: VirtualClock
    secrets: LabSecrets
    simulator: SimulatorHandle
    client: VendorClient
    admin: httpx.AsyncClient
    recorder: Recorder
    patients: list[str]
    events: list[IntegrationEvent] = field(default_factory=list)
    journal: Journal | None = None  # the lab's journal of the integration's events, when asked for

    @property
    def client_id(self) -> str:
        return self.secrets.client_id

    async def credential_ids(self) -> list[str]:
        answer = await self.admin.get(f"/admin/clients/{self.client_id}")
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["credentials"]]

    async def add_secret(self, secret: str) -> str:
        answer = await self.admin.post(f"/admin/clients/{self.client_id}/secrets", json={"secret": secret})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def add_key(self, key: RSAKey | ECKey) -> str:
        answer = await self.admin.post(f"/admin/clients/{self.client_id}/keys",
                                       json={"jwk": dict(key.as_dict(private=False))})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def revoke(self, credential_id: str) -> None:
        answer = await self.admin.delete(f"/admin/clients/{self.client_id}/credentials/{credential_id}")
        assert answer.status_code == 200, answer.text

    async def expire_tokens(self) -> None:
        answer = await self.admin.post("/admin/tokens/expire", json={"client_id": self.client_id})
        assert answer.status_code == 200, answer.text

    async def read(self) -> Outcome:
        try:
            await self.client.connector.read("Patient", self.patients[0])
        except ConnectorError as exc:
            return Outcome(self.clock.monotonic(), type(exc).__name__)
        return Outcome(self.clock.monotonic(), None)

    async def reads(self, until: float, every: float) -> list[Outcome]:
        outcomes = []
        while self.clock.monotonic() < until:
            outcomes.append(await self.read())
            await self.clock.sleep(every)
        return outcomes

    def rejections(self) -> list[CredentialRejected]:
        return [e for e in self.events if isinstance(e, CredentialRejected)]

    async def close(self) -> None:
        await self.client.aclose()
        await self.admin.aclose()


async def build(name: str, seed: int = 5, patients: int = 2, *, journal: bool = False) -> VendorLab:
    """Inside `run_virtual`. With `journal`, the integration's events also go through the runner's listener."""
    clock = VirtualClock()
    adapter = VENDORS[name]
    sources = RandomSource(seed)
    secrets = LabSecrets.generate(name, sources.stream(f"secrets.{name}"))
    simulator = adapter.simulator(clock, sources.stream(f"simulator.{name}"), secrets)
    seeded = simulator.seed_patients(patients)
    base_url = f"http://{name}.ehrlab.test"
    recorder = Recorder(VirtualTransport(simulator.app), clock)
    events: list[Any] = []
    lab_journal = Journal(clock) if journal else None
    to_journal = journal_listener(lab_journal) if lab_journal is not None else None

    def listen(event: IntegrationEvent) -> None:
        events.append(event)
        if to_journal is not None:
            to_journal(event)

    client = adapter.client(base_url=base_url, transport=recorder, clock=clock, sources=sources, secrets=secrets,
                            listener=listen)
    admin = httpx.AsyncClient(transport=VirtualTransport(simulator.app), base_url=base_url,
                              headers={"Authorization": f"Bearer {secrets.admin_token}"})
    return VendorLab(name=name, clock=clock, secrets=secrets, simulator=simulator, client=client, admin=admin,
                     recorder=recorder, patients=seeded, events=events, journal=lab_journal)
