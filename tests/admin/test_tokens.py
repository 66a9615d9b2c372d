"""The shared token store and forced expiry through the admin API, on virtual time."""

from __future__ import annotations

import random

import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.admin.tokens import TokenStore
from tests.admin.support import ADMIN, CLIENT_A, CLIENT_B, SECRET_B, bearer, client_for, get_token, make_mini, patient


def test_tokens_expire_after_their_lifetime_on_the_clock() -> None:
    clock = VirtualClock()

    async def main() -> None:
        tokens = TokenStore(clock, random.Random(1), lifetime_s=300)
        issued = tokens.issue("app", ["system/*.rs"])
        short = tokens.issue("app", ["system/*.rs"], lifetime_s=10)
        assert (issued.expires_in, short.expires_in) == (300, 10)
        grant = tokens.check(issued.value)
        assert grant is not None
        assert grant.client_id == "app"
        assert grant.scopes == ("system/*.rs",)
        assert grant.expires_at == 300.0
        assert grant.remaining(clock.monotonic()) == 300.0
        await clock.sleep(10)
        assert tokens.check(short.value) is None
        assert tokens.inspect(short.value) is not None  # known, but expired
        await clock.sleep(289.5)
        assert tokens.check(issued.value) is not None
        await clock.sleep(0.5)
        assert tokens.check(issued.value) is None
        assert tokens.check("not-a-token") is None
        await clock.sleep(400)
        tokens.issue("app", [])  # prunes tokens expired more than a lifetime ago
        assert tokens.inspect(short.value) is None

    run_virtual(main)


def test_forced_expiry_all_or_one_client_and_revocation() -> None:
    async def main() -> None:
        tokens = TokenStore(VirtualClock(), random.Random(1), lifetime_s=300)
        a1, a2 = tokens.issue("a", []).value, tokens.issue("a", []).value
        b1 = tokens.issue("b", []).value
        assert tokens.expire("a") == 2
        assert tokens.check(a1) is None
        assert tokens.check(a2) is None
        assert tokens.check(b1) is not None
        assert tokens.inspect(a1) is not None
        assert tokens.expire("a") == 0  # already expired
        assert tokens.expire() == 1
        assert tokens.active() == 0
        b2 = tokens.issue("b", []).value
        assert tokens.revoke_client("b") == 1
        assert tokens.inspect(b2) is None
        assert tokens.inspect(b1) is None
        c = tokens.issue("c", []).value
        assert tokens.revoke(c)
        assert not tokens.revoke(c)

    run_virtual(main)


def test_token_values_come_from_the_seed_and_never_from_a_repr() -> None:
    async def values(seed: int) -> list[str]:
        tokens = TokenStore(VirtualClock(), random.Random(seed), lifetime_s=60)
        issued = [tokens.issue("app", []) for _ in range(3)]
        assert all(i.value not in repr(i) and i.value not in repr(tokens) for i in issued)
        assert all(len(i.value) == 64 for i in issued)
        return [i.value for i in issued]

    assert run_virtual(lambda: values(3)) == run_virtual(lambda: values(3))
    assert run_virtual(lambda: values(3)) != run_virtual(lambda: values(4))


@pytest.mark.parametrize("lifetime", [0, -1])
def test_lifetime_must_be_positive(lifetime: float) -> None:
    with pytest.raises(ValueError, match="lifetime_s"):
        TokenStore(VirtualClock(), random.Random(1), lifetime_s=lifetime)


def test_admin_forced_expiry_of_one_client_then_all() -> None:
    async def main() -> None:
        mini = make_mini()
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token_a = await get_token(client)
            token_b = await get_token(client, CLIENT_B, SECRET_B)
            url = f"/fhir/Patient/{pid}"
            assert (await client.get("/admin/tokens", headers=ADMIN)).json()["active"] == 2
            expired = await client.post("/admin/tokens/expire", json={"client_id": CLIENT_A}, headers=ADMIN)
            assert expired.json() == {"expired": 1}
            assert (await client.get(url, headers=bearer(token_a))).status_code == 401
            assert (await client.get(url, headers=bearer(token_b))).status_code == 200
            fresh = await get_token(client)  # the client recovers with a new token
            assert (await client.get(url, headers=bearer(fresh))).status_code == 200
            everything = await client.post("/admin/tokens/expire", headers=ADMIN)  # no body: all tokens
            assert everything.json() == {"expired": 2}
            for token in (fresh, token_b):
                assert (await client.get(url, headers=bearer(token))).status_code == 401
            revoked = await client.post("/admin/tokens/revoke", json={"client_id": CLIENT_A}, headers=ADMIN)
            assert revoked.json() == {"revoked": 0}  # every token of A had already expired
            assert mini.tokens.inspect(fresh) is None

    run_virtual(main)


@pytest.mark.parametrize(("path", "body"), [
    ("/admin/tokens/expire", {"client_id": ""}),
    ("/admin/tokens/expire", {"client": "a"}),
    ("/admin/tokens/revoke", {}),
    ("/admin/tokens/revoke", None),
])
def test_bad_token_requests_are_400(path: str, body: object) -> None:
    async def main() -> int:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            await get_token(client)
            response = await client.post(path, json=body, headers=ADMIN)
            assert mini.tokens.active() == 1
            return response.status_code

    assert run_virtual(main) == 400
