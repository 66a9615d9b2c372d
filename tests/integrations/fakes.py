"""A fake FHIR vendor for the connector's unit tests: an `httpx.MockTransport` handler with an OAuth
token endpoint and scripted FHIR answers, on the test's virtual clock."""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

from harness.clock import VirtualClock
from integrations.events import IntegrationEvent
from integrations.fhir import (
    BreakerConfig,
    CircuitBreaker,
    ClientCredentials,
    ClientCredentialsAuth,
    FhirConnector,
    RetryPolicy,
    TokenCache,
)

ORIGIN = "https://ehr.example.test"
BASE_URL = f"{ORIGIN}/fhir/R4"
TOKEN_URL = f"{ORIGIN}/oauth2/token"
CLIENT_ID = "lab-client"
CLIENT_SECRET = "s3cr3t-VALUE-never-logged-7f1c"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def fhir_json(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/fhir+json", **(headers or {})})


def outcome(status: int, code: str, text: str) -> httpx.Response:
    return fhir_json(status, {"resourceType": "OperationOutcome",
                              "issue": [{"severity": "error", "code": code, "details": {"text": text}}]})


def patient(pid: str = "p1", version: str = "1") -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": version},
            "name": [{"family": "Doe", "given": ["Jane"]}]}


@dataclass
class Seen:
    """One request that reached the fake."""

    t: float
    method: str
    url: httpx.URL
    headers: httpx.Headers
    body: bytes
    token: str | None  # the bearer token it carried


@dataclass
class FakeVendor:
    """Token endpoint + FHIR server. `script` answers FHIR requests in order, then `default` answers."""

    clock: VirtualClock
    expires_in: float = 3600.0
    token_latency: float = 0.0
    latency: float = 0.0  # before answering a FHIR request
    token_failures: deque[httpx.Response | Exception] = field(default_factory=deque)  # answered/raised first
    reject_tokens: int = 0  # answer this many FHIR requests with 401 regardless of the token
    script: deque[Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]] = field(default_factory=deque)
    default: Callable[[httpx.Request], httpx.Response] = lambda request: fhir_json(200, patient())
    secret: str = CLIENT_SECRET
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    token_requests: list[Seen] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)  # FHIR requests (not token requests)
    expired_use: list[Seen] = field(default_factory=list)  # FHIR requests that carried an expired token
    rng: random.Random = field(default_factory=lambda: random.Random(99))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        seen = Seen(t=now, method=request.method, url=request.url, headers=request.headers,
                    body=request.content, token=token)
        if request.url.path == "/oauth2/token":
            self.token_requests.append(seen)
            return await self._token(request)
        self.requests.append(seen)
        if self.latency:
            await self.clock.sleep(self.latency)
            now = self.clock.monotonic()
        if token is None or token not in self.tokens:
            return outcome(401, "login", "Unauthorized")
        if now >= self.tokens[token]:
            self.expired_use.append(seen)
            return outcome(401, "login", "Unauthorized")
        if self.reject_tokens > 0:
            self.reject_tokens -= 1
            return outcome(401, "login", "Unauthorized")
        if self.script:
            answer = self.script.popleft()(request)
            return answer if isinstance(answer, httpx.Response) else await answer
        return self.default(request)

    def revoke_all(self) -> None:
        self.tokens.clear()

    async def _token(self, request: httpx.Request) -> httpx.Response:
        if self.token_latency:
            await self.clock.sleep(self.token_latency)
        if self.token_failures:
            failure = self.token_failures.popleft()
            if isinstance(failure, Exception):
                raise failure
            return failure
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if request.headers.get("content-type") != "application/x-www-form-urlencoded" \
                or form.get("grant_type") != "client_credentials":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.secret:
            return httpx.Response(400, json={"error": "invalid_client", "error_description": "Invalid secret"})
        value = f"tok-{len(self.tokens) + 1}-{self.rng.getrandbits(64):016x}"
        self.tokens[value] = self.clock.monotonic() + self.expires_in
        return httpx.Response(200, json={"access_token": value, "token_type": "Bearer",
                                         "expires_in": self.expires_in})


@dataclass
class Kit:
    """A connector wired to a fake vendor, collecting events."""

    clock: VirtualClock
    vendor: FakeVendor
    connector: FhirConnector
    breaker: CircuitBreaker
    auth: ClientCredentialsAuth
    events: list[tuple[float, IntegrationEvent]]

    def of(self, kind: type[object]) -> list[object]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def close(self) -> None:
        await self.connector.aclose()
        await self.breaker.aclose()


def make_kit(vendor: FakeVendor | None = None, *, retry: RetryPolicy | None = None,
             breaker: BreakerConfig | None = None, seed: int = 7, clock: VirtualClock | None = None,
             credentials: Callable[[], ClientCredentials] | None = None, attempt_timeout_s: float = 10.0) -> Kit:
    """Build inside a running loop (`run_virtual`)."""
    clock = clock or (vendor.clock if vendor else VirtualClock())
    vendor = vendor or FakeVendor(clock)
    events: list[tuple[float, IntegrationEvent]] = []

    def listen(event: IntegrationEvent) -> None:
        events.append((clock.monotonic(), event))

    creds = ClientCredentials(CLIENT_ID, CLIENT_SECRET)
    auth = ClientCredentialsAuth(vendor="fake", token_url=TOKEN_URL, credentials=credentials or (lambda: creds),
                                 clock=clock, cache=TokenCache(clock), listener=listen)
    cb = CircuitBreaker("fake", clock, breaker or BreakerConfig(), listener=listen)
    connector = FhirConnector(vendor="fake", base_url=BASE_URL, transport=httpx.MockTransport(vendor), auth=auth,
                              clock=clock, rng=random.Random(seed), retry=retry or RetryPolicy(), breaker=cb,
                              listener=listen, attempt_timeout_s=attempt_timeout_s)
    return Kit(clock=clock, vendor=vendor, connector=connector, breaker=cb, auth=auth, events=events)
