"""What the registry's default client (`build_connector`) wires besides auth and a breaker, against the vendor
simulators in process (virtual clock):

- the client-side rate limit per system (runbook 004_bc3882054056792c.txt "Rate Limiting": Epic 600/h,
  Cerner 10,000/h by default; configurable or off), so Epic's 601st read in an hour waits instead of
  meeting the vendor's 429;
- credential rotation without a restart through `RegisteredSystem.credentials` (runbooks
  000_030ea53f0735abf7.txt §1, 002_437ee203264dfa64.txt §10.2): right order, zero failed reads and the
  old credential never presented after its revocation; wrong order, the typed `CredentialsRejected`
  once, the breaker CLOSED, healed by the deployment; during the overlap a new credential the vendor
  does not know yet falls back to the old one (Medplum's `invalid_request` included).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS
from integrations.events import (
    BreakerTransitioned,
    CredentialRejected,
    IntegrationEvent,
    RequestThrottled,
    RetryScheduled,
)
from integrations.fhir import ConnectorError, FhirConnector, RateLimited
from integrations.fhir.credentials import ClientCredentials, Credential, SigningKeyCredentials
from integrations.fhir.ratelimit import RateLimit
from integrations.systems import ConfigError, SystemRegistry, load_registry_config
from simulators.transport import VirtualTransport
from tests.integrations.auth.support import Recorder, rsa_key
from tests.integrations.systems.support import PATIENT, LabSystem, lab_systems

NEW_SECRET = "registry-rotated-7c4f8a1c6e2b9d0e5a"  # passes the placeholder rules
NEW_KID = "registry-rs384-2"
HOUR = 3600.0


def _connector(registry: SystemRegistry, system_id: str) -> FhirConnector:
    client = registry.get(system_id).client
    assert isinstance(client, FhirConnector)
    return client


# -- the client-side rate limit ------------------------------------------------------------------------


@pytest.mark.parametrize(("vendor", "setting", "expected"), [
    ("epic", None, RateLimit(600, HOUR)),
    ("cerner", None, RateLimit(10_000, HOUR)),
    ("medplum", None, None),
    ("allscripts", None, None),  # "varies by agreement": no default
    ("allscripts", {"requests": 1200}, RateLimit(1200, HOUR)),
    ("medplum", {"requests": 5, "window_s": 60}, RateLimit(5, 60.0)),
    ("epic", {"max_wait_s": 30}, RateLimit(600, HOUR, max_wait_s=30.0)),
    ("epic", {"enabled": False}, None),
])
def test_each_system_gets_its_vendors_rate_limit_unless_configured(vendor: str, setting: dict[str, Any] | None,
                                                                    expected: RateLimit | None) -> None:
    async def main() -> RateLimit | None:
        system = lab_systems(VirtualClock(), [vendor])[vendor]
        config = system.config()
        if setting is not None:
            config["rate_limit"] = setting
        registry = SystemRegistry.build({"systems": [config]}, clock=VirtualClock(), rng=random.Random(1),
                                        transport_for=lambda s: VirtualTransport(system.simulator.app))
        async with registry:
            limiter = _connector(registry, vendor).rate_limiter
            return limiter.limit if limiter is not None else None

    assert run_virtual(main) == expected


@pytest.mark.parametrize(("setting", "field_name"), [
    ({"requests": 0}, "systems.0.rate_limit.requests"),
    ({"requests": 10, "window_s": 0}, "systems.0.rate_limit.window_s"),
    ({"max_wait_s": -1}, "systems.0.rate_limit.max_wait_s"),
    ({"per_hour": 10}, "systems.0.rate_limit.per_hour"),
])
def test_a_bad_rate_limit_is_refused_naming_the_field(setting: dict[str, Any], field_name: str) -> None:
    config = {"id": "medplum", "vendor": "medplum", "base_url": "https://medplum.hospital.test/fhir/R4",
              "auth": {"method": "client_secret_post", "token_url": "https://medplum.hospital.test/oauth2/token",
                       "client_id": "lab-medplum", "client_secret": NEW_SECRET},
              "rate_limit": setting}
    with pytest.raises(ConfigError) as caught:
        load_registry_config({"systems": [config]})
    assert caught.value.fields == (field_name,)


@pytest.mark.parametrize("limited", [True, False])
def test_epics_601st_read_in_an_hour_waits_instead_of_meeting_epics_429(limited: bool) -> None:
    """The control (`enabled: false`) shows the measurement can fail: the simulator does answer 429."""

    async def main() -> tuple[list[str | None], float, list[RequestThrottled]]:
        clock = VirtualClock()
        epic = lab_systems(clock, ["epic"])["epic"]
        patient_id = epic.seed(PATIENT)
        config = epic.config()
        if not limited:
            config["rate_limit"] = {"enabled": False}
        events: list[IntegrationEvent] = []
        registry = SystemRegistry.build({"systems": [config]}, clock=clock, rng=random.Random(1),
                                        transport_for=lambda s: VirtualTransport(epic.simulator.app),
                                        listener=lambda event: events.append(event))
        outcomes: list[str | None] = []
        async with registry:
            client = registry.get("epic").client
            for _ in range(601):
                try:
                    await client.read("Patient", patient_id)
                    outcomes.append(None)
                except ConnectorError as exc:
                    outcomes.append(type(exc).__name__)
        return outcomes, clock.monotonic(), [e for e in events if isinstance(e, RequestThrottled)]

    outcomes, ended, throttled = run_virtual(main)
    assert outcomes[:600] == [None] * 600
    if limited:
        assert outcomes[600] is None  # the vendor never had to say 429
        assert ended == HOUR  # the 601st read went when the first one left the hour
        assert [(e.vendor, e.wait_s, e.refused) for e in throttled] == [("epic", HOUR, False)]
    else:
        assert outcomes[600] == RateLimited.__name__
        assert throttled == []


# -- credential rotation through the registry ----------------------------------------------------------


@dataclass
class RegistryLab:
    system: LabSystem
    registry: SystemRegistry
    recorder: Recorder
    clock: VirtualClock
    patient_id: str
    events: list[IntegrationEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.system.name

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=VirtualTransport(self.system.simulator.app), base_url=self.system.root,
                                 headers={"Authorization": f"Bearer {self.system.secrets.admin_token}"})

    async def admin_call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.admin() as admin:
            answer = await admin.request(method, path, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    async def credential_ids(self) -> list[str]:
        client = await self.admin_call("GET", f"/admin/clients/{self.system.secrets.client_id}")
        return [c["id"] for c in client["credentials"]]

    async def register_new(self) -> None:
        client_id = self.system.secrets.client_id
        if self.name == "epic":
            jwk = dict(rsa_key(NEW_KID).as_dict(private=False))
            await self.admin_call("POST", f"/admin/clients/{client_id}/keys", json={"jwk": jwk})
        else:
            await self.admin_call("POST", f"/admin/clients/{client_id}/secrets", json={"secret": NEW_SECRET})

    async def revoke(self, credential_id: str) -> None:
        await self.admin_call("DELETE", f"/admin/clients/{self.system.secrets.client_id}/credentials/{credential_id}")

    async def expire_tokens(self) -> None:
        await self.admin_call("POST", "/admin/tokens/expire", json={"client_id": self.system.secrets.client_id})

    def deploy_new(self) -> None:
        client_id = self.system.secrets.client_id
        credential: Credential = (
            SigningKeyCredentials(client_id, rsa_key(NEW_KID), NEW_KID, "RS384", label=f"key {NEW_KID}")
            if self.name == "epic" else ClientCredentials(client_id, NEW_SECRET, label="rotated secret"))
        credentials = self.registry.get(self.name).credentials
        assert credentials is not None
        credentials.deploy(credential)

    def old_marker(self) -> str:
        secrets = self.system.secrets
        return f"kid:{secrets.key_id}" if self.name == "epic" else secrets.client_secret

    def new_marker(self) -> str:
        return f"kid:{NEW_KID}" if self.name == "epic" else NEW_SECRET

    async def reads(self, until: float, every: float) -> list[tuple[float, str | None]]:
        outcomes: list[tuple[float, str | None]] = []
        client = self.registry.get(self.name).client
        while self.clock.monotonic() < until:
            try:
                await client.read("Patient", self.patient_id)
                outcomes.append((self.clock.monotonic(), None))
            except ConnectorError as exc:
                outcomes.append((self.clock.monotonic(), type(exc).__name__))
            await self.clock.sleep(every)
        return outcomes

    def rejections(self) -> list[CredentialRejected]:
        return [e for e in self.events if isinstance(e, CredentialRejected)]


def _registry_lab(name: str) -> RegistryLab:
    """Inside `run_virtual`."""
    clock = VirtualClock()
    system = lab_systems(clock, [name])[name]
    patient_id = system.seed(PATIENT)
    recorder = Recorder(VirtualTransport(system.simulator.app), clock)
    events: list[IntegrationEvent] = []
    registry = SystemRegistry.build({"systems": [system.config()]}, clock=clock,
                                    rng=RandomSource(7).stream("systems"), transport_for=lambda s: recorder,
                                    listener=lambda event: events.append(event))
    return RegistryLab(system=system, registry=registry, recorder=recorder, clock=clock, patient_id=patient_id,
                       events=events)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_rotation_in_the_right_order_fails_no_read(name: str) -> None:
    async def main() -> tuple[RegistryLab, list[tuple[float, str | None]], float, float]:
        lab = _registry_lab(name)
        async with lab.registry:
            work = asyncio.create_task(lab.reads(until=300.0, every=5.0))
            await lab.clock.sleep(50)
            [old_id] = await lab.credential_ids()
            await lab.register_new()  # 1. the new credential at the vendor
            lab.deploy_new()  # 2. deployed to the running integration
            deployed_at = lab.clock.monotonic()
            await lab.expire_tokens()
            await lab.clock.sleep(60)  # 3. verified by traffic
            revoked_at = lab.clock.monotonic()
            await lab.revoke(old_id)  # 4. the old one revoked
            await lab.expire_tokens()
            outcomes = await work
        return lab, outcomes, deployed_at, revoked_at

    lab, outcomes, deployed_at, revoked_at = run_virtual(main)
    assert len(outcomes) == 60
    assert [o for o in outcomes if o[1] is not None] == []
    after_deploy = lab.recorder.token_requests(since=deployed_at)
    assert after_deploy, "the forced expiry must have made the client re-authenticate"
    assert {s.credential for s in after_deploy} == {lab.new_marker()}
    assert lab.recorder.token_requests(since=revoked_at), "and again after the revocation"
    assert lab.old_marker() not in {s.credential for s in lab.recorder.token_requests(since=revoked_at)}
    assert lab.rejections() == []


@pytest.mark.parametrize("name", ["medplum", "cerner"])
def test_rotation_in_the_wrong_order_is_one_typed_refusal_and_the_deployment_heals_it(name: str) -> None:
    async def main() -> tuple[RegistryLab, list[tuple[float, str | None]], str]:
        lab = _registry_lab(name)
        async with lab.registry:
            work = asyncio.create_task(lab.reads(until=200.0, every=2.0))
            await lab.clock.sleep(50)
            [old_id] = await lab.credential_ids()
            await lab.revoke(old_id)  # revoked before the new credential exists anywhere
            await lab.expire_tokens()
            await lab.clock.sleep(50)
            await lab.register_new()
            lab.deploy_new()
            outcomes = await work
            state = lab.registry.get(name).breaker.state.value
        return lab, outcomes, state

    lab, outcomes, state = run_virtual(main)
    failed = [o for o in outcomes if o[1] is not None]
    assert len(failed) >= 20  # more than the breaker's minimum calls, had they counted as failures
    assert {error for _, error in failed} == {"CredentialsRejected"}
    assert all(50 <= t < 100 for t, _ in failed)
    assert all(error is None for t, error in outcomes if t >= 100)
    during = [s.credential for s in lab.recorder.token_requests(since=50) if s.t < 100]
    assert during == [lab.old_marker()]  # asked once, not once per read
    [rejected] = lab.rejections()
    assert (rejected.vendor, rejected.credential, rejected.fallback) == (name, f"{name} configured secret", False)
    assert state == "CLOSED"
    assert not [e for e in lab.events if isinstance(e, BreakerTransitioned | RetryScheduled)]


@pytest.mark.parametrize(("name", "refusal"), [("medplum", "invalid_request"), ("cerner", "invalid_client")])
def test_a_new_credential_the_vendor_does_not_know_yet_falls_back_to_the_configured_one(name: str,
                                                                                        refusal: str) -> None:
    async def main() -> tuple[RegistryLab, list[tuple[float, str | None]]]:
        lab = _registry_lab(name)
        async with lab.registry:
            lab.deploy_new()  # deployed before it was registered at the vendor
            outcomes = await lab.reads(until=2.0, every=1.0)
        return lab, outcomes

    lab, outcomes = run_virtual(main)
    assert [error for _, error in outcomes] == [None, None]
    assert [s.credential for s in lab.recorder.token_requests()] == [NEW_SECRET, lab.old_marker()]
    [rejected] = lab.rejections()
    assert (rejected.credential, rejected.fallback, rejected.error) == ("rotated secret", True, refusal)
