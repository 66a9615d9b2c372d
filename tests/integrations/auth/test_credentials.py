"""Credential sources (static, callable, environment, file) and `RotatingCredentials`: newest first,
rejection marks with a doubling recheck (vendors.md §2: no refresh more often than once a minute),
reload failures keep the last good set, nothing secret in a repr or an error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.fhir.auth_errors import ConfigurationError
from integrations.fhir.credential_sources import EnvCredentials, FileCredentials, load_signing_key
from integrations.fhir.credentials import (
    CallableCredentials,
    ClientCredentials,
    RotatingCredentials,
    SigningKeyCredentials,
    StaticCredentials,
)
from tests.integrations.auth.support import ec_key, rsa_key

OLD = ClientCredentials("app", "old-secret-value-0123456789", label="old")
NEW = ClientCredentials("app", "new-secret-value-9876543210", label="new")


def test_static_source_deploys_in_front_and_retires_by_label() -> None:
    source = StaticCredentials(OLD)
    source.deploy(NEW)
    assert [c.label for c in source.load()] == ["new", "old"]
    source.retire("old")
    assert source.load() == (NEW,)
    assert "secret-value" not in repr(source) + repr(NEW) + str(NEW)


def test_rejected_credentials_are_skipped_and_rechecked_after_a_doubling_delay() -> None:
    async def main() -> list[list[str]]:
        clock = VirtualClock()
        rotating = RotatingCredentials(StaticCredentials(NEW, OLD), clock, recheck_after_s=60, max_recheck_s=200)
        seen = [[c.label for c in rotating.candidates()]]
        new = rotating.candidates()[0]
        assert rotating.reject(new) == 60
        seen.append([c.label for c in rotating.candidates()])
        await clock.sleep(60)
        seen.append([c.label for c in rotating.candidates()])  # rechecked after 60 s
        assert rotating.reject(new) == 120  # refused again: 120 s
        await clock.sleep(119)
        seen.append([c.label for c in rotating.candidates()])
        assert rotating.reject(new) == 200  # capped (the recheck is not due, but a refusal still counts)
        assert rotating.rejected_labels() == ["new"]
        assert rotating.next_recheck() == 200
        rotating.accept(new)
        seen.append([c.label for c in rotating.candidates()])
        return seen

    assert run_virtual(main) == [["new", "old"], ["old"], ["new", "old"], ["old"], ["new", "old"]]


def test_a_credential_offered_again_is_tried_again_and_a_failed_reload_keeps_the_last_set() -> None:
    async def main() -> list[list[str]]:
        clock = VirtualClock()
        offered: list[object] = [[NEW, OLD]]

        def provider() -> list[ClientCredentials]:
            current = offered[0]
            if isinstance(current, Exception):
                raise current
            assert isinstance(current, list)
            return current

        rotating = RotatingCredentials(CallableCredentials(provider), clock)
        rotating.reject(rotating.candidates()[0])
        seen = [[c.label for c in rotating.candidates()]]
        offered[0] = [OLD]  # the new one withdrawn ...
        seen.append([c.label for c in rotating.candidates()])
        offered[0] = [NEW, OLD]  # ... and offered again (e.g. re-registered): its mark is gone
        seen.append([c.label for c in rotating.candidates()])
        offered[0] = RuntimeError(f"vault said {NEW.client_secret}")
        seen.append([c.label for c in rotating.candidates()])  # last good set
        return seen

    assert run_virtual(main) == [["old"], ["old"], ["new", "old"], ["new", "old"]]


def test_a_source_that_never_loaded_fails_without_quoting_the_provider() -> None:
    def provider() -> ClientCredentials:
        raise RuntimeError(f"vault said {NEW.client_secret}")

    async def main() -> ConfigurationError:
        rotating = RotatingCredentials(CallableCredentials(provider, vendor="medplum"), VirtualClock())
        with pytest.raises(ConfigurationError) as caught:
            rotating.candidates()
        return caught.value

    error = run_virtual(main)
    assert error.problems == ("credentials provider failed (RuntimeError)",)
    assert NEW.client_secret not in str(error) + repr(error)
    assert error.__cause__ is None


def test_env_source_reads_current_and_previous_at_every_load(tmp_path: Path) -> None:
    key_file = tmp_path / "epic.pem"
    key_file.write_bytes(ec_key("k-env").as_pem(private=True))
    env = {"MEDPLUM_CLIENT_ID": "holi", "MEDPLUM_CLIENT_SECRET": NEW.client_secret}
    source = EnvCredentials("MEDPLUM_", environ=env)
    assert [(c.label, c.client_id) for c in source.load()] == [("MEDPLUM_CLIENT_SECRET", "holi")]
    env["MEDPLUM_CLIENT_SECRET_PREVIOUS"] = OLD.client_secret
    env["MEDPLUM_CLIENT_ID_PREVIOUS"] = "holi-old"
    loaded = source.load()
    assert [(c.label, c.client_id) for c in loaded] == [("MEDPLUM_CLIENT_SECRET", "holi"),
                                                        ("MEDPLUM_CLIENT_SECRET_PREVIOUS", "holi-old")]
    epic = EnvCredentials("EPIC_", environ={"EPIC_CLIENT_ID": "e1", "EPIC_PRIVATE_KEY_PATH": str(key_file),
                                            "EPIC_KEY_ID": "k-env"})
    [key] = epic.load()
    assert isinstance(key, SigningKeyCredentials)
    assert (key.kid, key.alg, key.label) == ("k-env", "ES384", "EPIC_PRIVATE_KEY_PATH")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "EPIC_CLIENT_ID: missing"),
        ({"EPIC_CLIENT_ID": "e1"}, "EPIC_CLIENT_SECRET or EPIC_PRIVATE_KEY_PATH: missing"),
        ({"EPIC_CLIENT_ID": "e1", "EPIC_PRIVATE_KEY_PATH": "/nonexistent/key.pem", "EPIC_KEY_ID": "k"},
         "EPIC_PRIVATE_KEY_PATH: the key file cannot be read (FileNotFoundError)"),
        ({"EPIC_CLIENT_ID": "e1", "EPIC_PRIVATE_KEY_PATH": "/nonexistent/key.pem"},
         "EPIC_PRIVATE_KEY_PATH: a signing key needs a key id (kid)"),
    ],
)
def test_env_source_names_what_is_missing(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EnvCredentials("EPIC_", environ=env, vendor="epic").load()
    assert caught.value.problems == (problem,)
    assert caught.value.vendor == "epic"


def test_file_source_is_reread_when_it_changes(tmp_path: Path) -> None:
    (tmp_path / "k1.pem").write_bytes(rsa_key("k-file-1").as_pem(private=True))
    path = tmp_path / "credentials.json"

    def write(entries: list[dict[str, str]]) -> None:
        tmp = tmp_path / "credentials.json.tmp"
        tmp.write_text(json.dumps({"client_id": "e1", "credentials": entries}))
        os.replace(tmp, path)  # atomic, as a secrets agent does it

    write([{"label": "q1", "private_key_path": "k1.pem", "kid": "k-file-1"}])
    source = FileCredentials(path)
    [first] = source.load()
    assert isinstance(first, SigningKeyCredentials)
    assert (first.kid, first.alg, first.client_id) == ("k-file-1", "RS384", "e1")
    assert source.load()[0] is first  # unchanged file: not parsed again
    pem = ec_key("k-file-2").as_pem(private=True).decode()
    write([{"label": "q2", "private_key_pem": pem, "kid": "k-file-2"},
           {"label": "q1", "private_key_path": "k1.pem", "kid": "k-file-1"},
           {"label": "secret", "client_secret": NEW.client_secret, "client_id": "other"}])
    assert [(c.label, c.client_id) for c in source.load()] == [("q2", "e1"), ("q1", "e1"), ("secret", "other")]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "credentials.json: not a JSON document"),
        (json.dumps({"client_id": "e1", "credentials": []}), "credentials.json: credentials: List should have at"),
        (json.dumps({"client_id": "e1", "credentials": [{"label": "a", "client_secret": NEW.client_secret,
                                                          "kid": "x", "private_key_pem": "also"}]}),
         "credentials.json: credentials.0: Value error, give exactly one of"),
        (json.dumps({"client_id": "e1", "credentials": [{"label": "a", "private_key_pem": NEW.client_secret,
                                                          "kid": "x"}]}),
         "credentials.json: credentials[0] (a): not a PEM-encoded RSA or EC key"),
    ],
)
def test_file_source_problems_name_the_field_never_the_value(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        FileCredentials(path).load()
    assert caught.value.problems[0].startswith(problem)
    assert NEW.client_secret not in str(caught.value)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        FileCredentials(tmp_path / "missing.json").load()


def test_signing_keys_must_be_private_and_fit_the_algorithm() -> None:
    assert load_signing_key(rsa_key("k1").as_pem(private=True))[1] == "RS384"
    assert load_signing_key(ec_key("k2").as_pem(private=True), "ES384")[1] == "ES384"
    with pytest.raises(ValueError, match="does not fit"):
        load_signing_key(rsa_key("k1").as_pem(private=True), "ES384")
    with pytest.raises(ValueError, match="public key"):
        load_signing_key(rsa_key("k1").as_pem(private=False))
    key = SigningKeyCredentials("e1", ec_key("k2"), "k2", label="current")
    assert "PRIVATE" not in repr(key)
    assert "'d'" not in repr(key)
