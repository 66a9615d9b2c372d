"""The lab's vendor adapters (`harness.vendors`): registry, credentials, paths."""

from __future__ import annotations

import random

from harness.vendors import VENDORS, LabSecrets


def test_the_registry_has_all_four_vendors_with_their_paths() -> None:
    paths = {name: (adapter.fhir_path, adapter.token_path) for name, adapter in VENDORS.items()}
    assert paths == {
        "medplum": ("/fhir/R4", "/oauth2/token"),
        "epic": ("/api/FHIR/R4", "/oauth2/token"),
        "cerner": ("/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
                   "/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/protocols/oauth2/profiles/smart-v1/token"),
        "allscripts": ("/FHIR", "/authorization/connect/token"),
    }
    assert all(adapter.name == name for name, adapter in VENDORS.items())


def test_lab_secrets_keep_their_old_values_and_add_a_reproducible_es384_key() -> None:
    old = random.Random(5)

    def token(n: int) -> str:
        return "".join(old.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    expected = (f"ehrlab-epic-{token(8)}", token(40), token(32))
    first, again = LabSecrets.generate("epic", random.Random(5)), LabSecrets.generate("epic", random.Random(5))
    assert (first.client_id, first.client_secret, first.admin_token) == expected
    assert first.signing_key is not None
    assert again.signing_key is not None
    assert first.signing_key.thumbprint() == again.signing_key.thumbprint()
    assert first.signing_key.curve_name == "P-384"
    other = LabSecrets.generate("epic", random.Random(6)).signing_key
    assert other is not None
    assert other.thumbprint() != first.signing_key.thumbprint()
    [public] = first.public_jwks()["keys"]  # type: ignore[misc]
    assert "d" not in public
    assert public["kid"] == first.key_id


def test_lab_secrets_repr_shows_no_secret_and_no_key() -> None:
    secrets = LabSecrets.generate("epic", random.Random(5))
    assert secrets.signing_key is not None
    text = repr(secrets)
    private = str(secrets.signing_key.as_dict(private=True)["d"])
    for hidden in (secrets.client_secret, secrets.admin_token, private):
        assert hidden not in text
    assert secrets.client_id in text


def test_each_simulator_serves_an_openapi_schema_with_its_admin_api() -> None:
    import warnings

    from harness.clock import VirtualClock, run_virtual
    from tests.vendors.support import client_for, make_allscripts, make_cerner, make_epic

    async def main() -> list[dict[str, object]]:
        clock = VirtualClock()
        schemas = []
        for make in (make_epic, make_cerner, make_allscripts):
            async with client_for(make(clock).app, "http://vendor.test") as client:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # e.g. FastAPI's duplicate operation id warning
                    response = await client.get("/openapi.json")
                assert response.status_code == 200
                schemas.append(response.json())
        return schemas

    for schema in run_virtual(main):
        paths = schema["paths"]
        assert isinstance(paths, dict)
        assert "/admin/chaos" in paths
        assert any(path.endswith("/token") for path in paths)
