"""Client registry and the credentials admin API: rotation overlap, revocation, keys, no secret leaks."""

from __future__ import annotations

import functools
import random
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from harness.clock import VirtualClock, run_virtual
from simulators.admin.clients import ClientRegistry, InvalidCredential, UnknownClient, UnknownCredential
from tests.admin.support import ADMIN, CLIENT_A, SECRET_A, client_for, make_mini


@functools.cache
def _ec(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid})


def _public(kid: str) -> dict[str, Any]:
    return dict(_ec(kid).as_dict(private=False))


def _registry(seed: int = 1) -> ClientRegistry:
    return ClientRegistry(VirtualClock(), random.Random(seed))


def _in_loop(check: Any) -> Any:
    async def main() -> Any:
        return check()

    return run_virtual(main)


def test_rotation_overlap_then_revoke() -> None:
    def check() -> None:
        registry = _registry()
        registry.register("app", secret="old-secret")
        [old] = registry.credentials("app")
        new = registry.add_secret("app", "new-secret")
        assert registry.verify_secret("app", "old-secret")
        assert registry.verify_secret("app", "new-secret")
        registry.revoke("app", old.id)
        assert not registry.verify_secret("app", "old-secret")
        assert registry.verify_secret("app", "new-secret")
        listed = registry.credentials("app")
        assert [(c.id, c.kind, c.active) for c in listed] == [(old.id, "secret", False), (new, "secret", True)]
        registry.revoke("app", old.id)  # idempotent
        with pytest.raises(UnknownCredential):
            registry.revoke("app", "cred-000000000000")

    _in_loop(check)


def test_verify_secret_rejects_wrong_unknown_and_empty() -> None:
    def check() -> None:
        registry = _registry()
        registry.register("app", secret="right")
        assert not registry.verify_secret("app", "wrong")
        assert not registry.verify_secret("app", "")
        assert not registry.verify_secret("nobody", "right")
        registry.register("keys-only", jwks={"keys": [_public("k1")]})
        assert not registry.verify_secret("keys-only", "right")
        with pytest.raises(InvalidCredential):
            registry.add_secret("app", "")
        with pytest.raises(UnknownClient):
            registry.add_secret("nobody", "x")

    _in_loop(check)


def test_keys_rotate_and_private_or_malformed_keys_are_refused() -> None:
    def check() -> None:
        registry = _registry()
        registry.register("app", jwks={"keys": [_public("k1")]}, jwks_url="https://app.example/jwks")
        second = registry.add_key("app", _public("k2"))
        assert [k["kid"] for k in registry.public_keys("app")] == ["k1", "k2"]
        first = registry.credentials("app")[0]
        assert (first.kind, first.kid, first.kty) == ("key", "k1", "EC")
        registry.revoke("app", first.id)
        assert [k["kid"] for k in registry.public_keys("app")] == ["k2"]
        registry.revoke("app", second)
        assert registry.public_keys("app") == []
        bad_keys = (_ec("k3").as_dict(private=True), {"kty": "RSA", "n": "abc"}, {"kty": "zz"},
                    {"kty": "oct", "k": "AA"})
        for bad in bad_keys:
            with pytest.raises(InvalidCredential):
                registry.add_key("app", bad)
        assert registry.public_keys("nobody") == []
        info = registry.get("app")
        assert info is not None
        assert info.jwks_url == "https://app.example/jwks"

    _in_loop(check)


def test_credential_ids_come_from_the_seed_and_nothing_secret_is_in_a_repr() -> None:
    def ids(seed: int) -> list[str]:
        registry = _registry(seed)
        registry.register("app", secret="one-secret-value")
        registry.add_secret("app", "two-secret-value")
        assert "secret-value" not in repr(registry)
        assert all("secret-value" not in repr(c) and "secret-value" not in str(c.to_json())
                   for c in registry.credentials("app"))
        return [c.id for c in registry.credentials("app")]

    assert _in_loop(lambda: ids(4)) == _in_loop(lambda: ids(4))
    assert _in_loop(lambda: ids(4)) != _in_loop(lambda: ids(5))


def test_generated_secrets_are_reproducible_and_usable() -> None:
    def make(seed: int) -> str:
        registry = _registry(seed)
        registry.register("app")
        _, secret = registry.generate_secret("app", 24)
        assert len(secret) == 24
        assert registry.verify_secret("app", secret)
        return secret

    assert _in_loop(lambda: make(9)) == _in_loop(lambda: make(9))


# -- through the admin API ---------------------------------------------------------------------


async def _token_status(client: httpx.AsyncClient, secret: str) -> int:
    response = await client.post("/token", data={"client_id": CLIENT_A, "client_secret": secret})
    return response.status_code


def test_admin_rotation_both_secrets_work_until_the_old_is_revoked() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            added = await client.post(f"/admin/clients/{CLIENT_A}/secrets", json={"secret": "rotated-secret-0003"},
                                      headers=ADMIN)
            assert added.status_code == 201
            assert set(added.json()) == {"id"}
            assert await _token_status(client, SECRET_A) == 200
            assert await _token_status(client, "rotated-secret-0003") == 200
            listing = (await client.get(f"/admin/clients/{CLIENT_A}", headers=ADMIN)).json()
            assert SECRET_A not in str(listing)
            assert "rotated-secret-0003" not in str(listing)
            old_id = listing["credentials"][0]["id"]
            revoked = await client.delete(f"/admin/clients/{CLIENT_A}/credentials/{old_id}", headers=ADMIN)
            assert revoked.status_code == 200
            assert [c["active"] for c in revoked.json()["credentials"]] == [False, True]
            assert await _token_status(client, SECRET_A) == 401
            assert await _token_status(client, "rotated-secret-0003") == 200

    run_virtual(main)


def test_admin_generated_secret_is_answered_once_and_works() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            added = await client.post(f"/admin/clients/{CLIENT_A}/secrets", json={}, headers=ADMIN)
            assert added.status_code == 201
            secret = added.json()["secret"]
            assert len(secret) == 40
            assert await _token_status(client, secret) == 200
            everything = (await client.get("/admin/clients", headers=ADMIN)).json()
            assert secret not in str(everything)
            assert [c["client_id"] for c in everything["clients"]] == [CLIENT_A, "client-b"]

    run_virtual(main)


def test_admin_add_and_revoke_a_key() -> None:
    async def main() -> None:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            added = await client.post(f"/admin/clients/{CLIENT_A}/keys", json={"jwk": _public("k9")}, headers=ADMIN)
            assert added.status_code == 201
            assert [k["kid"] for k in mini.registry.public_keys(CLIENT_A)] == ["k9"]
            revoked = await client.delete(f"/admin/clients/{CLIENT_A}/credentials/{added.json()['id']}",
                                          headers=ADMIN)
            assert revoked.status_code == 200
            assert mini.registry.public_keys(CLIENT_A) == []

    run_virtual(main)


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/admin/clients/nobody/secrets", {"secret": "abc"}, 404),
    ("POST", f"/admin/clients/{CLIENT_A}/secrets", {"secret": ""}, 400),
    ("POST", f"/admin/clients/{CLIENT_A}/secrets", {"secret": "x", "extra": 1}, 400),
    ("POST", f"/admin/clients/{CLIENT_A}/secrets", {"length": 3}, 400),
    ("POST", f"/admin/clients/{CLIENT_A}/keys", {"jwk": {"kty": "zz"}}, 400),
    ("POST", f"/admin/clients/{CLIENT_A}/keys", {"jwk": "not-an-object"}, 400),
    ("POST", f"/admin/clients/{CLIENT_A}/keys", None, 400),
    ("DELETE", f"/admin/clients/{CLIENT_A}/credentials/cred-000000000000", None, 404),
    ("DELETE", f"/admin/clients/{CLIENT_A}/credentials/not-an-id", None, 400),
    ("GET", "/admin/clients/nobody", None, 404),
    ("GET", "/admin/clients/bad%20id", None, 400),
])
def test_bad_credential_requests_are_4xx_outcomes(method: str, path: str, body: Any, status: int) -> None:
    async def main() -> httpx.Response:
        mini = make_mini()
        async with client_for(mini.sim.app) as client:
            response = await client.request(method, path, json=body, headers=ADMIN)
            assert len(mini.registry.credentials(CLIENT_A)) == 1
            return response

    response = run_virtual(main)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "abc" not in response.text  # a rejected secret is never echoed
