"""The Allscripts Unity security-token flow against the Allscripts simulator (simulators/allscripts/unity.py):
GetToken once and reuse, refresh 60 s before the configured lifetime ends (002_437ee203264dfa64.txt §2.1),
refresh and resend once on Unity's expired-token error row, RetireSecurityToken on shutdown, credential
rotation shared with the FHIR flow, and Unity's errors typed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.fhir import AuthError, MalformedResponse, RateLimited, ServerError
from integrations.fhir.auth_errors import CredentialsRejected, UnityCallFailed
from integrations.fhir.credentials import ClientCredentials
from integrations.fhir.unity_auth import UNITY_PATH, UnityClient, UnityTokenAuth
from tests.integrations.auth.support import VendorLab, build

NEW_SECRET = "rotated-unity-secret-5e0c2b7a9d1f"


def _unity(lab: VendorLab) -> UnityClient:
    assert lab.client.unity is not None
    return lab.client.unity


def _paths(lab: VendorLab, name: str) -> list[float]:
    return [s.t for s in lab.recorder.sent if s.path == f"{UNITY_PATH}/{name}"]


def test_token_is_reused_refreshed_before_expiry_and_on_the_expired_token_error() -> None:
    async def main() -> tuple[VendorLab, list[float], list[list[Any]]]:
        lab = await build("allscripts")
        unity = _unity(lab)
        rows = [await unity.magic("Echo", patient_id="p-1", parameters=["a", "b"])]
        rows.append(await unity.magic("GetPatient", patient_id=lab.patients[0]))  # reused
        await lab.clock.sleep(1200 - 61 - lab.clock.monotonic())
        rows.append(await unity.magic("GetServerInfo"))  # 61 s before the end: reused
        await lab.clock.sleep(2)
        rows.append(await unity.magic("GetServerInfo"))  # 59 s before: refreshed first
        await lab.expire_tokens()  # Unity ends the session early: an error row, then one refresh and resend
        rows.append(await unity.magic("GetServerInfo"))
        get_tokens = _paths(lab, "GetToken")
        await lab.close()
        return lab, get_tokens, rows

    lab, get_tokens, rows = run_virtual(main)
    assert get_tokens == [0.0, 1141.0, 1141.0]
    assert rows[0] == [{"userid": "ehrlab", "appname": "ehrlab", "patientid": "p-1", "parameter1": "a",
                        "parameter2": "b", "parameter3": "", "parameter4": "", "parameter5": "",
                        "parameter6": ""}]
    assert rows[1][0]["ID"] == lab.patients[0]
    assert len(_paths(lab, "MagicJson")) == 6  # five calls, one of them resent after the error row
    assert lab.secrets.client_secret not in repr(lab.client.unity)


def test_shutdown_retires_the_security_token() -> None:
    async def main() -> tuple[VendorLab, bool, bool]:
        lab = await build("allscripts")
        await _unity(lab).magic("Echo")
        [magic] = [s for s in lab.recorder.sent if s.path.endswith("/MagicJson")]
        token = _unity(lab).auth.cache.peek()
        assert token is not None
        store: Any = lab.simulator
        live_before = store.unity.session(token.value) is not None
        await lab.close()
        live_after = store.unity.session(token.value) is not None
        assert magic.t == 0.0
        return lab, live_before, live_after

    lab, live_before, live_after = run_virtual(main)
    assert (live_before, live_after) == (True, False)
    assert len(_paths(lab, "RetireSecurityToken")) == 1


def test_shutdown_without_a_token_sends_nothing() -> None:
    async def main() -> VendorLab:
        lab = await build("allscripts")
        await lab.close()
        return lab

    assert run_virtual(main).recorder.sent == []


def test_unity_shares_the_rotation_and_reports_a_revoked_credential() -> None:
    async def main() -> tuple[VendorLab, BaseException, int]:
        lab = await build("allscripts")
        unity = _unity(lab)
        await unity.magic("Echo")
        [old_id] = await lab.credential_ids()
        await lab.revoke(old_id)  # wrong order: revoked before the new secret is deployed
        await lab.expire_tokens()
        with pytest.raises(CredentialsRejected) as caught:
            await unity.magic("Echo")
        with pytest.raises(CredentialsRejected):  # refused at once: no second GetToken
            await unity.magic("Echo")
        get_tokens = len(_paths(lab, "GetToken"))
        await lab.add_secret(NEW_SECRET)
        assert lab.client.credentials is not None
        lab.client.credentials.deploy(ClientCredentials(lab.client_id, NEW_SECRET, label="lab-secret-2"))
        await unity.magic("Echo")
        await lab.close()
        return lab, caught.value, get_tokens

    lab, error, get_tokens = run_virtual(main)
    assert get_tokens == 2
    assert error.is_auth
    assert not error.retryable
    assert lab.secrets.client_secret not in str(error)
    assert [s.credential for s in lab.recorder.token_requests()] == [lab.secrets.client_secret,
                                                                     lab.secrets.client_secret, NEW_SECRET]
    [rejected] = lab.rejections()
    assert (rejected.credential, rejected.error) == ("lab-secret-1", "invalid_client")


def test_unity_rotation_in_the_right_order_fails_no_call_and_never_presents_the_revoked_password() -> None:
    async def main() -> tuple[VendorLab, list[str | None], float, float]:
        lab = await build("allscripts")
        unity = _unity(lab)
        outcomes: list[str | None] = []

        async def calls() -> None:
            while lab.clock.monotonic() < 300:
                try:
                    await unity.magic("Echo")
                    outcomes.append(None)
                except Exception as exc:  # any failure is what this test counts
                    outcomes.append(type(exc).__name__)
                await lab.clock.sleep(5)

        work = asyncio.create_task(calls())
        await lab.clock.sleep(50)
        [old_id] = await lab.credential_ids()
        await lab.add_secret(NEW_SECRET)  # 1. the new password at the vendor
        assert lab.client.credentials is not None
        lab.client.credentials.deploy(ClientCredentials(lab.client_id, NEW_SECRET, label="lab-secret-2"))  # 2.
        deployed_at = lab.clock.monotonic()
        await lab.expire_tokens()  # Unity ends the session: the next call gets a token with the new password
        await lab.clock.sleep(60)  # 3. verified by traffic
        revoked_at = lab.clock.monotonic()
        await lab.revoke(old_id)  # 4. the old password revoked
        await lab.expire_tokens()
        await work
        await lab.close()
        return lab, outcomes, deployed_at, revoked_at

    lab, outcomes, deployed_at, revoked_at = run_virtual(main)
    assert len(outcomes) == 60
    assert set(outcomes) == {None}  # zero failed calls
    get_tokens = [s for s in lab.recorder.token_requests() if s.path.endswith("/GetToken")]
    assert [s.credential for s in get_tokens if s.t >= revoked_at] == [NEW_SECRET]  # re-authenticated once, new
    # one GetToken after each forced end of session, both with the new password
    assert [s.credential for s in get_tokens if s.t >= deployed_at] == [NEW_SECRET, NEW_SECRET]
    assert lab.rejections() == []


def _scripted(answers: dict[str, httpx.Response]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return answers[request.url.path.rsplit("/", 1)[-1]]

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("magic", "error"),
    [
        (httpx.Response(200, json=[{"Error": "Magic Error - Action: Echo - Invalid or expired security token."}]),
         AuthError),
        (httpx.Response(200, json=[{"Error": "Magic Error - The request limit for this application has been "
                                             "reached."}]), RateLimited),
        (httpx.Response(200, json=[{"Error": "Magic Error - Action: Echo - Patient 12 not found"}]), UnityCallFailed),
        (httpx.Response(200, json={"unexpected": True}), MalformedResponse),
        (httpx.Response(503), ServerError),
    ],
)
def test_unity_answers_are_typed_and_never_quoted(magic: httpx.Response, error: type[Exception]) -> None:
    async def main() -> BaseException:
        clock = VirtualClock()
        auth = UnityTokenAuth(unity_url=f"http://u.test{UNITY_PATH}", appname="ehrlab", clock=clock,
                              credentials=lambda: ClientCredentials("user", "a-long-enough-password-123"))
        transport = _scripted({"GetToken": httpx.Response(200, text="tok-123"), "MagicJson": magic,
                               "RetireSecurityToken": httpx.Response(200, text="<ok/>")})
        unity = UnityClient(auth=auth, transport=transport, clock=clock)
        with pytest.raises(error) as caught:
            await unity.magic("Echo")
        await unity.aclose()
        return caught.value

    caught = run_virtual(main)
    assert type(caught) is error
    assert "Patient" not in str(caught)  # an error row is classified, never quoted (it may echo input)


@pytest.mark.parametrize(
    ("body", "oauth_error"),
    [("error: Username and password not valid for any licensed application.", "invalid_client"),
     ("error: Appname is not licensed for this Unity server.", "unity_error")],
)
def test_get_token_errors_in_the_body(body: str, oauth_error: str) -> None:
    async def main() -> tuple[AuthError, list[str]]:
        clock = VirtualClock()
        events: list[Any] = []
        auth = UnityTokenAuth(unity_url=f"http://u.test{UNITY_PATH}", appname="ehrlab", clock=clock,
                              credentials=lambda: ClientCredentials("user", "a-long-enough-password-123"),
                              listener=events.append)
        seen: list[str] = []

        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(json.loads(request.content).get("Password", ""))
            return httpx.Response(200, text=body)

        unity = UnityClient(auth=auth, transport=httpx.MockTransport(handle), clock=clock)
        with pytest.raises(AuthError) as caught:
            await unity.magic("Echo")
        await unity.aclose()
        return caught.value, [type(e).__name__ for e in events]

    error, events = run_virtual(main)
    assert error.oauth_error == oauth_error
    assert isinstance(error, CredentialsRejected) == (oauth_error == "invalid_client")
    assert "password" not in str(error).lower() or "the username and password" in str(error)
    assert events[0] == "TokenRequestFailed"
    assert ("CredentialRejected" in events) == (oauth_error == "invalid_client")
