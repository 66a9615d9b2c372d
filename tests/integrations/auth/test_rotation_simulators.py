"""Credential rotation against every vendor simulator, as the lab builds the clients (harness/vendors.py).

Right order (runbooks 000_030ea53f0735abf7.txt §1, 002_437ee203264dfa64.txt §10.2): register the new
credential at the vendor, deploy it to the integration, revoke the old one. Traffic continues with zero
failed requests, and after the revocation no token request presents the old credential.

Wrong order (the old one revoked before the new one is deployed): calls fail with the typed
`CredentialsRejected`, the vendor is asked once (not once per call), the breaker stays CLOSED (auth
errors are not provider failures, `integrations.fhir.breaker.provider_failure`), nothing is retried,
one `CredentialRejected` event is emitted; deploying the new credential heals it at once.

Epic rotates from the lab's ES384 key to an RS384 key, so both SMART algorithms go through its verifier.
"""

from __future__ import annotations

import asyncio

import pytest

from harness.clock import run_virtual
from harness.vendors import VENDORS
from integrations.events import BreakerTransitioned, RetryScheduled, TokenIssued
from integrations.fhir.credentials import ClientCredentials, Credential, SigningKeyCredentials
from tests.integrations.auth.support import Outcome, VendorLab, build, rsa_key

NEW_SECRET = "rotated-secret-7c1e9a4b2d8f6e3a0b5c"
NEW_KID = "ehrlab-rs384-2"


def old_marker(lab: VendorLab) -> str:
    return f"kid:{lab.secrets.key_id}" if lab.name == "epic" else lab.secrets.client_secret


def new_marker(lab: VendorLab) -> str:
    return f"kid:{NEW_KID}" if lab.name == "epic" else NEW_SECRET


def new_credential(lab: VendorLab) -> Credential:
    if lab.name == "epic":
        return SigningKeyCredentials(lab.client_id, rsa_key(NEW_KID), NEW_KID, "RS384", label=f"key {NEW_KID}")
    return ClientCredentials(lab.client_id, NEW_SECRET, label="lab-secret-2")


async def register_new(lab: VendorLab) -> str:
    return await (lab.add_key(rsa_key(NEW_KID)) if lab.name == "epic" else lab.add_secret(NEW_SECRET))


def deploy(lab: VendorLab, credential: Credential) -> None:
    assert lab.client.credentials is not None
    lab.client.credentials.deploy(credential)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_rotation_in_the_right_order_fails_no_request(name: str) -> None:
    async def main() -> tuple[VendorLab, list[Outcome], float, float]:
        lab = await build(name)
        work = asyncio.create_task(lab.reads(until=300.0, every=5.0))
        await lab.clock.sleep(50)
        [old_id] = await lab.credential_ids()
        await register_new(lab)  # 1. generate the new credential at the vendor
        deploy(lab, new_credential(lab))  # 2. deploy it (no restart)
        deployed_at = lab.clock.monotonic()
        await lab.expire_tokens()  # the next call re-authenticates: with the new credential
        await lab.clock.sleep(60)  # 3. verify
        revoked_at = lab.clock.monotonic()
        await lab.revoke(old_id)  # 4. revoke the old one
        await lab.expire_tokens()
        outcomes = await work
        await lab.close()
        return lab, outcomes, deployed_at, revoked_at

    lab, outcomes, deployed_at, revoked_at = run_virtual(main)
    assert len(outcomes) == 60
    assert [o for o in outcomes if o.error is not None] == []  # zero failed requests
    after_deploy = lab.recorder.token_requests(since=deployed_at)
    assert after_deploy, "the forced expiry must have made the client re-authenticate"
    assert {s.credential for s in after_deploy} == {new_marker(lab)}
    assert [s for s in lab.recorder.token_requests(since=revoked_at)], "and again after the revocation"
    assert old_marker(lab) not in {s.credential for s in lab.recorder.token_requests(since=revoked_at)}
    assert lab.rejections() == []
    assert sum(isinstance(e, TokenIssued) for e in lab.events) == len(lab.recorder.token_requests())


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_rotation_in_the_wrong_order_is_a_typed_error_not_a_storm_nor_an_open_breaker(name: str) -> None:
    async def main() -> tuple[VendorLab, list[Outcome]]:
        lab = await build(name)
        work = asyncio.create_task(lab.reads(until=200.0, every=2.0))
        await lab.clock.sleep(50)
        [old_id] = await lab.credential_ids()
        await lab.revoke(old_id)  # revoked before the new credential exists anywhere
        await lab.expire_tokens()
        await lab.clock.sleep(50)
        await register_new(lab)
        deploy(lab, new_credential(lab))
        outcomes = await work
        await lab.close()
        return lab, outcomes

    lab, outcomes = run_virtual(main)
    failed = [o for o in outcomes if o.error is not None]
    assert len(failed) >= 20  # enough calls for the breaker's minimum (10) had they counted as failures
    assert {o.error for o in failed} == {"CredentialsRejected"}
    assert all(50 <= o.t < 100 for o in failed)
    assert all(o.error is None for o in outcomes if o.t >= 100)  # the new credential healed it at once
    during = [s for s in lab.recorder.token_requests(since=50) if s.t < 100]
    assert [s.credential for s in during] == [old_marker(lab)]  # asked once, not once per call
    assert old_marker(lab) not in {s.credential for s in lab.recorder.token_requests(since=100)}
    [rejected] = lab.rejections()
    assert (rejected.vendor, rejected.fallback) == (name, False)
    assert rejected.credential == (f"key {lab.secrets.key_id}" if name == "epic" else "lab-secret-1")
    assert lab.client.breaker.state.value == "CLOSED"
    assert not [e for e in lab.events if isinstance(e, BreakerTransitioned | RetryScheduled)]


def test_during_the_overlap_a_refused_new_credential_falls_back_to_the_old_one() -> None:
    """The new secret deployed before the vendor knows it: the old one carries the traffic, once reported."""

    async def main() -> tuple[VendorLab, list[Outcome]]:
        lab = await build("cerner")
        deploy(lab, new_credential(lab))  # not registered at the vendor yet
        outcomes = [await lab.read(), await lab.read()]
        await lab.close()
        return lab, outcomes

    lab, outcomes = run_virtual(main)
    assert [o.error for o in outcomes] == [None, None]
    assert [s.credential for s in lab.recorder.token_requests()] == [NEW_SECRET, lab.secrets.client_secret]
    [rejected] = lab.rejections()
    assert (rejected.credential, rejected.fallback, rejected.error) == ("lab-secret-2", True, "invalid_client")
