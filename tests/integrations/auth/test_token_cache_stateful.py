"""A Hypothesis state machine over the token cache and the auth flow (runbook 002_437ee203264dfa64.txt §2.1:
tokens reused until 60 s before expiry): time passes, the vendor changes token lifetimes and latencies,
revokes tokens or fails its token endpoint, and bursts of concurrent calls arrive. Invariants:

- no request ever reaches the vendor with a token past its expiry, nor with less than the 60 s margin
  left (half the lifetime for tokens shorter than two margins);
- a burst of concurrent calls makes at most one token request (single flight), and none when the cached
  token was still usable and nothing was revoked;
- every call of a burst succeeds, unless the one token request of the burst failed, in which case every
  call fails with the same `ServerError` (shared, not retried N times).

One looptime event loop lives as long as the machine, so virtual time carries over from rule to rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import looptime
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from harness.clock import VirtualClock
from integrations.fhir import ClientCredentialsAuth, ConnectorError, ServerError, TokenCache, TokenFlow
from integrations.fhir.credentials import ClientCredentials, StaticCredentials

T = TypeVar("T")
TOKEN_URL = "https://ehr.example.test/oauth2/token"
FHIR_URL = "https://ehr.example.test/fhir/R4/Patient/p1"
SECRET = "stateful-secret-value-0123456789"


@dataclass
class Vendor:
    clock: VirtualClock
    lifetime: float = 600.0
    token_latency: float = 0.0
    latency: float = 0.0
    fail_next: int = 0  # token requests to answer 503
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    lifetimes: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    expired_on_the_wire: list[float] = field(default_factory=list)
    inside_margin: list[float] = field(default_factory=list)  # remaining lifetimes below the margin

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.token_requests += 1
            arrived = self.clock.monotonic()  # lifetimes count from here, as the client counts them from sending
            await self.clock.sleep(self.token_latency)
            if self.fail_next:
                self.fail_next -= 1
                return httpx.Response(503)
            value = f"tok-{self.token_requests}"
            self.tokens[value] = arrived + self.lifetime
            self.lifetimes[value] = self.lifetime
            return httpx.Response(200, json={"access_token": value, "expires_in": self.lifetime})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        now = self.clock.monotonic()
        if token in self.tokens and now >= self.tokens[token]:
            self.expired_on_the_wire.append(now)  # arrived carrying a token past its expiry
        if token in self.tokens and self.tokens[token] - now < min(60.0, self.lifetimes[token] / 2):
            self.inside_margin.append(self.tokens[token] - now)
        await self.clock.sleep(self.latency)
        if self.tokens.get(token, -1.0) <= now:
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})


class TokenCacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = looptime.new_event_loop(start=0.0, noop_cycles=0, idle_timeout=1.0)
        self.clock = VirtualClock()
        self.vendor = Vendor(self.clock)
        self.cache = TokenCache(self.clock)
        self.auth = ClientCredentialsAuth(vendor="fake", token_url=TOKEN_URL, clock=self.clock, cache=self.cache,
                                          credentials=StaticCredentials(ClientCredentials("app", SECRET)))
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self.vendor), auth=self.auth)
        self.revoked = False
        self.bursts = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @rule(seconds=st.floats(0, 3000))
    def time_passes(self, seconds: float) -> None:
        self.run(self.clock.sleep(seconds))

    @rule(delta=st.one_of(st.sampled_from([-5.0, -1.0, -0.001, 0.0, 0.001, 1.0, 5.0]), st.floats(-60, 60)))
    def time_passes_to_near_the_margin(self, delta: float) -> None:
        """To `delta` seconds from where the newest token enters the margin (min(60 s, half its lifetime))."""
        if self.vendor.tokens:
            token = max(self.vendor.tokens, key=self.vendor.tokens.__getitem__)
            margin_starts = self.vendor.tokens[token] - min(60.0, self.vendor.lifetimes[token] / 2)
            self.run(self.clock.sleep(margin_starts + delta - self.loop.time()))

    @rule(lifetime=st.floats(30, 4000), token_latency=st.floats(0, 5), latency=st.floats(0, 5))
    def vendor_changes(self, lifetime: float, token_latency: float, latency: float) -> None:
        self.vendor.lifetime, self.vendor.token_latency, self.vendor.latency = lifetime, token_latency, latency

    @rule()
    def vendor_revokes_every_token(self) -> None:
        self.vendor.tokens.clear()
        self.revoked = True

    @precondition(lambda self: self.vendor.fail_next == 0)
    @rule()
    def token_endpoint_fails_once(self) -> None:
        self.vendor.fail_next = 1

    @rule(n=st.integers(1, 12))
    def burst(self, n: int) -> None:
        async def call() -> int | ConnectorError:
            try:
                return (await self.client.get(FHIR_URL)).status_code
            except ConnectorError as exc:
                return exc

        async def together() -> tuple[bool, list[int | ConnectorError]]:
            usable = self.cache.get() is not None and not self.revoked  # the clock reads the running loop
            return usable, list(await asyncio.gather(*(call() for _ in range(n))))

        failing = self.vendor.fail_next > 0
        before = self.vendor.token_requests
        usable, results = self.run(together())
        asked = self.vendor.token_requests - before
        self.bursts += 1
        assert asked <= 1, f"{asked} token requests for one burst"
        if usable:
            assert asked == 0
        if asked == 1 and failing:
            # a token endpoint 503 is the vendor's outage (ServerError, retryable), not bad credentials (AuthError)
            assert all(isinstance(r, ServerError) and r.status == 503 and r.token_endpoint and r.retryable
                       for r in results), results
            assert len({id(r) for r in results}) == n  # one error per caller, each with its own correlation
        else:
            assert results == [200] * n, results
        if asked:
            self.revoked = False

    @invariant()
    def no_expired_token_on_the_wire(self) -> None:
        assert self.vendor.expired_on_the_wire == []

    @invariant()
    def tokens_are_reused_only_until_the_margin(self) -> None:
        assert self.vendor.inside_margin == []

    def teardown(self) -> None:
        try:
            self.run(self.client.aclose())
        finally:
            self.loop.close()


TokenCacheMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_token_cache_state_machine = TokenCacheMachine.TestCase


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _without_single_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    original = TokenFlow.__init__

    def init(self: TokenFlow, **kwargs: Any) -> None:
        original(self, **kwargs)
        self._lock = _NoLock()  # type: ignore[assignment]

    monkeypatch.setattr(TokenFlow, "__init__", init)


def _ignoring_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TokenCache, "usable_until", lambda self, token: token.expires_at)


@pytest.mark.parametrize("break_it", [_ignoring_the_margin, _without_single_flight])
def test_the_machine_catches_a_broken_cache(monkeypatch: pytest.MonkeyPatch,
                                            break_it: Callable[[pytest.MonkeyPatch], None]) -> None:
    """The machine is not vacuous: a cache that hands tokens out until their very expiry, or a refresh that
    is not single-flight, is caught."""
    break_it(monkeypatch)
    with pytest.raises(AssertionError):  # found without shrinking, which would take far longer
        run_state_machine_as_test(TokenCacheMachine, settings=settings(
            max_examples=200, stateful_step_count=25, deadline=None, database=None, phases=[Phase.generate]))
