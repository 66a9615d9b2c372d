"""Start-up validation (runbook 002_437ee203264dfa64.txt §2.5 fail-fast, Appendix A "min 20 chars"): every
problem named by its field or label, no value ever echoed; the lab's own clients pass it."""

from __future__ import annotations

import httpx
import pytest

from harness.clock import VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets
from integrations.fhir.auth_errors import ConfigurationError
from integrations.fhir.config import (
    MIN_SECRET_LENGTH,
    VendorAuthConfig,
    inside_lab,
    is_placeholder,
    validate_auth_config,
)
from integrations.fhir.credentials import ClientCredentials, SigningKeyCredentials
from tests.integrations.auth.support import build, ec_key

GOOD_SECRET = "k3J9x2LqP0vR7sT4wY8zA1bC"
GOOD = {"base_url": "https://fhir.vendor.example.org/R4", "token_url": "https://fhir.vendor.example.org/token"}


def problems(**overrides: object) -> tuple[str, ...]:
    arguments: dict[str, object] = {"base_url": "https://medplum.holilabs.com/fhir/R4",
                                    "token_url": "https://medplum.holilabs.com/oauth2/token",
                                    "credentials": [ClientCredentials("holi-prod-client", GOOD_SECRET, label="S")]}
    arguments.update(overrides)
    try:
        validate_auth_config("medplum", **arguments)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        return exc.problems
    return ()


def test_a_good_configuration_passes() -> None:
    assert problems() == ()
    assert problems(credentials=[SigningKeyCredentials("epic-app", ec_key("k1"), "k1")]) == ()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "S: missing"),
        ("[ROTATE_MONTHLY]", "S: is a placeholder, not a real secret"),  # 002 §5.2
        ("your_epic_client_secret_value", "S: is a placeholder, not a real secret"),  # 004 "Configuration"
        ("changeme-changeme-changeme", "S: is a placeholder, not a real secret"),
        ("${MEDPLUM_CLIENT_SECRET}", "S: is a placeholder, not a real secret"),
        ("x" * 32, "S: is a placeholder, not a real secret"),
        ("k3J9x2LqP0vR7sT4wY8", f"S: shorter than {MIN_SECRET_LENGTH} characters"),  # 19 characters
    ],
)
def test_secrets_missing_placeholder_or_short_are_refused(secret: str, problem: str) -> None:
    found = problems(credentials=[ClientCredentials("holi-prod-client", secret, label="S")])
    assert found == (problem,)
    assert not secret or all(secret not in p for p in found)


def test_a_secret_of_exactly_20_characters_is_enough() -> None:
    assert problems(credentials=[ClientCredentials("holi-prod-client", GOOD_SECRET[:20], label="S")]) == ()


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        (None, "base_url: missing"),
        ("fhir.vendor.org/R4", "base_url: not an absolute http(s) URL"),
        ("http://fhir.vendor.org/R4", "base_url: must use https outside the lab"),
        ("http://10.0.0.5:8103/fhir/R4", "base_url: must use https outside the lab"),
        ("https://user:pw@fhir.vendor.org/R4", "base_url: must not carry credentials (user info)"),
        ("https://fhir.vendor.org/R4?tenant=1", "base_url: must not carry a query or fragment"),
        ("https://your-allscripts-instance.com/FHIR", "base_url: the host is a placeholder"),  # 004
    ],
)
def test_urls_are_https_outside_the_lab(base_url: str | None, problem: str) -> None:
    assert problems(base_url=base_url) == (problem,)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8103/fhir/R4", "http://localhost:8103", "http://[::1]:9/x",
                                 "http://medplum.ehrlab.test/fhir/R4", "http://medplum.test/fhir/R4"])
def test_plain_http_inside_the_lab_is_allowed_unless_the_deployment_says_not(url: str) -> None:
    assert problems(base_url=url) == ()
    assert problems(base_url=url, allow_loopback=False) == ("base_url: must use https outside the lab",)


def test_every_problem_is_listed_at_once_and_keys_need_a_kid() -> None:
    found = problems(base_url=None, token_url="http://auth.vendor.org/token",
                     credentials=[ClientCredentials("your_client_id", "short", label="A"),
                                  SigningKeyCredentials("epic-app", ec_key("k1"), "", label="B")])
    assert found == ("base_url: missing", "token_url: must use https outside the lab",
                     "A: client id is a placeholder", f"A: shorter than {MIN_SECRET_LENGTH} characters",
                     "B: key id (kid) missing or a placeholder")
    assert problems(credentials=[]) == ("credentials: none configured",)


def test_from_env_reads_once_with_a_prefix_and_names_the_variables() -> None:
    env = {"MEDPLUM_BASE_URL": "https://medplum.holilabs.com/fhir/R4",
           "MEDPLUM_TOKEN_URL": "https://medplum.holilabs.com/oauth2/token",
           "MEDPLUM_CLIENT_ID": "holi-prod-client", "MEDPLUM_CLIENT_SECRET": GOOD_SECRET}
    config = VendorAuthConfig.from_env("medplum", "MEDPLUM_", environ=env)
    assert (config.base_url, [c.label for c in config.credentials.load()]) == (
        "https://medplum.holilabs.com/fhir/R4", ["MEDPLUM_CLIENT_SECRET"])
    env.update(MEDPLUM_CLIENT_SECRET="[ROTATE_MONTHLY]", MEDPLUM_BASE_URL="http://medplum.holilabs.com")
    del env["MEDPLUM_TOKEN_URL"]
    with pytest.raises(ConfigurationError) as caught:
        VendorAuthConfig.from_env("medplum", "MEDPLUM_", environ=env)
    assert caught.value.problems == ("MEDPLUM_BASE_URL: must use https outside the lab", "MEDPLUM_TOKEN_URL: missing",
                                     "MEDPLUM_CLIENT_SECRET: is a placeholder, not a real secret")
    assert "ROTATE_MONTHLY" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="EPIC_CLIENT_ID: missing"):
        VendorAuthConfig.from_env("epic", "EPIC_", environ={**GOOD})


def test_placeholder_and_lab_host_rules() -> None:
    assert is_placeholder("TODO-set-me")
    assert is_placeholder("<client-secret>")
    assert is_placeholder("{{secret}}")
    assert not is_placeholder("a8f3k2j4l5m6n7b8v9c0x1z2q3w4e5r6t7y8u9i0")
    assert not is_placeholder("fhir.ehrlab.test", words=False)
    assert inside_lab("127.0.0.2")
    assert inside_lab("app.localhost")
    assert not inside_lab("ehrlab.test.example.com")


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_the_labs_own_clients_pass_validation(name: str) -> None:
    async def main() -> bool:
        lab = await build(name)  # `harness.vendors` validates before building the client
        await lab.close()
        return lab.client.credentials is not None

    assert run_virtual(main)


def test_the_lab_refuses_to_build_a_client_with_a_bad_configuration() -> None:
    secrets = LabSecrets(client_id="ehrlab-medplum-1", client_secret="[ROTATE_MONTHLY]", admin_token="a" * 32)
    with pytest.raises(ConfigurationError, match=r"lab-secret-1: is a placeholder"):
        VENDORS["medplum"].client(base_url="http://medplum.example.org", transport=httpx.MockTransport(
            lambda r: httpx.Response(500)), clock=VirtualClock(), sources=RandomSource(1), secrets=secrets,
            listener=lambda e: None)
