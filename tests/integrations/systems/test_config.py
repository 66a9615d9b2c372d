"""The registry's typed configuration: what it accepts, and every bad configuration refused with
`ConfigError` naming the field, never echoing a secret."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from harness.clock import VirtualClock, run_virtual
from integrations.systems import (
    ConfigError,
    PoolLimits,
    RegistryConfig,
    SystemClient,
    SystemRegistry,
    SystemsError,
    UnknownSystem,
    load_registry_config,
)
from integrations.systems.pool import http_transport

SECRET = "s3cr3t-registry-value-9d1e"
EC_KEY = ECKey.derive_key("registry-test-key-material", "P-384")
EC_PEM = EC_KEY.as_pem(private=True).decode()


def _config() -> dict[str, Any]:
    return {"systems": [
        {"id": "epic_prod", "vendor": "epic", "base_url": "https://epic.hospital.test/api/FHIR/R4/",
         "auth": {"method": "private_key_jwt", "token_url": "https://epic.hospital.test/oauth2/token",
                  "client_id": "lab-epic", "private_key": EC_PEM, "key_id": "k1", "algorithm": "ES384"},
         "limits": {"max_connections": 4, "max_keepalive_connections": 2, "keepalive_expiry_s": 30}},
        {"id": "cerner_prod", "vendor": "cerner", "base_url": "https://fhir.hospital.test/r4/tenant",
         "auth": {"method": "client_secret_basic", "token_url": "https://auth.hospital.test/token",
                  "client_id": "lab-cerner", "client_secret": SECRET, "scope": "system/Patient.read"}},
        {"id": "medplum", "vendor": "medplum", "base_url": "http://medplum.hospital.test/fhir/R4",
         "auth": {"method": "client_secret_post", "token_url": "http://medplum.hospital.test/oauth2/token",
                  "client_id": "lab-medplum", "client_secret": SECRET}},
    ]}


def test_a_valid_configuration_is_typed_and_keeps_secrets_out_of_its_repr() -> None:
    config = load_registry_config(_config())
    assert isinstance(config, RegistryConfig)
    assert [s.id for s in config.systems] == ["epic_prod", "cerner_prod", "medplum"]
    epic = config.systems[0]
    assert epic.base_url == "https://epic.hospital.test/api/FHIR/R4"  # trailing slash dropped
    assert epic.limits == PoolLimits(max_connections=4, max_keepalive_connections=2, keepalive_expiry_s=30)
    assert config.systems[1].limits == PoolLimits()  # defaults
    text = repr(config) + str(config)
    assert SECRET not in text
    assert "PRIVATE KEY" not in text


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field", "reason"), [
    ("systems.1.id", "epic_prod", "systems", "configured twice"),
    ("systems.0.id", "Epic Prod!", "systems.0.id", "pattern"),
    ("systems.0.vendor", "meditech", "systems.0.vendor", "epic"),
    ("systems.2.base_url", "ftp://medplum.hospital.test/fhir", "systems.2.base_url", "http(s)"),
    ("systems.2.base_url", "https://medplum.hospital.test/fhir?x=1", "systems.2.base_url", "query"),
    ("systems.2.base_url", "fhir/R4", "systems.2.base_url", "absolute"),
    ("systems.2.base_url", "http://medplum.example.com/fhir/R4", "systems.2.base_url", "must use https"),
    ("systems.1.auth.token_url", "https://user:pw@auth.hospital.test/token", "systems.1.auth.token_url", "user info"),
    ("systems.0.limits.max_connections", 0, "systems.0.limits.max_connections", "greater than or equal to 1"),
    ("systems.0.limits.max_keepalive_connections", 9, "systems.0.limits", "must not exceed max_connections"),
    ("systems.1.auth.client_secret", "your_client_secret", "systems.1.auth.client_secret", "placeholder"),
    ("systems.1.auth.client_secret", "  ", "systems.1.auth.client_secret", "missing"),
    ("systems.1.auth.client_secret", "Zq8-short-but-real", "systems.1.auth.client_secret", "shorter than 20"),
    ("systems.0.base_url", "https://fhir.example.com/api/FHIR/R4", "systems.0.base_url", "placeholder"),
    ("systems.2.auth.client_id", "your_client_id", "systems.2.auth.client_id", "placeholder"),
    ("systems.1.auth.method", "client_secret_post", "systems.1", "cerner does not accept client_secret_post"),
    ("systems.1.auth.method", "api_key", "systems.1.auth", "method"),
    ("systems.0.auth.private_key", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
     "systems.0.auth", "not a PEM key usable for ES384"),
    ("systems.0.auth.algorithm", "RS384", "systems.0.auth", "not a PEM key usable for RS384"),
    ("systems.0.auth.assertion_lifetime_s", 600, "systems.0.auth.assertion_lifetime_s", "300"),
    ("systems.2.timeout", 30, "systems.2.timeout", "Extra inputs"),
    ("systems.2.auth", _DELETE, "systems.2.auth", "required"),
    ("systems", [], "systems", "at least 1"),
])
def test_a_bad_configuration_is_refused_with_a_typed_error_naming_the_field(
        path: str, value: Any, field: str, reason: str) -> None:
    data = copy.deepcopy(_config())
    _set(data, path, value)
    with pytest.raises(ConfigError) as caught:
        load_registry_config(data)
    error = caught.value
    assert isinstance(error, SystemsError)
    assert isinstance(error, ValueError)
    assert field in error.fields, error.problems
    assert any(reason in p.reason for p in error.problems if p.field == field), error.problems
    assert SECRET not in str(error)
    assert "PRIVATE KEY" not in str(error)
    if path.endswith(("client_secret", "private_key", "token_url")) and value.strip():
        assert value.strip() not in str(error)  # the refused value itself is never echoed


def test_epic_needs_a_jwt_client_assertion() -> None:
    data = _config()
    data["systems"][0]["auth"] = {"method": "client_secret_post", "token_url": "https://epic.hospital.test/token",
                                  "client_id": "lab-epic", "client_secret": SECRET}
    with pytest.raises(ConfigError, match="epic does not accept client_secret_post"):
        load_registry_config(data)


def test_a_public_key_is_refused_for_signing() -> None:
    data = _config()
    data["systems"][0]["auth"]["private_key"] = EC_KEY.as_pem(private=False).decode()
    with pytest.raises(ConfigError, match="public key"):
        load_registry_config(data)


def test_an_rsa_key_is_accepted_for_rs384() -> None:
    data = _config()
    rsa = RSAKey.generate_key(2048, private=True)
    data["systems"][0]["auth"].update(private_key=rsa.as_pem(private=True).decode(), algorithm="RS384")
    assert load_registry_config(data).systems[0].auth.method == "private_key_jwt"


def test_the_registry_refuses_a_bad_mapping_before_building_anything() -> None:
    data = _config()
    data["systems"][2]["vendor"] = "meditech"
    built: list[str] = []

    def transport_for(system: Any) -> httpx.AsyncBaseTransport:
        built.append(system.id)
        return httpx.MockTransport(lambda request: httpx.Response(500))

    with pytest.raises(ConfigError):
        SystemRegistry.build(data, clock=VirtualClock(), rng=random.Random(1), transport_for=transport_for)
    assert built == []


def test_the_registry_builds_every_configured_system_in_order_and_names_unknown_ones() -> None:
    registry = SystemRegistry.build(_config(), clock=VirtualClock(), rng=random.Random(1),
                                    transport_for=lambda system: httpx.MockTransport(lambda r: httpx.Response(500)))
    assert registry.ids == ("epic_prod", "cerner_prod", "medplum")
    assert [s.vendor.value for s in registry] == ["epic", "cerner", "medplum"]
    assert [s.id for s in registry.others("cerner_prod")] == ["epic_prod", "medplum"]
    assert registry.get("epic_prod").pool.limits.max_connections == 4
    assert "medplum" in registry
    assert len(registry) == 3
    with pytest.raises(UnknownSystem, match=r"'allscripts'.*epic_prod, cerner_prod, medplum"):
        registry.get("allscripts")


def test_real_mode_transport_gets_the_systems_httpx_limits() -> None:
    system = load_registry_config(_config()).systems[0]
    transport = http_transport(system)
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    pool = transport._pool  # httpcore's pool: where httpx applies Limits
    assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (4, 2, 30.0)


def _stub_factory(closed: list[str], *, refuse: str | None = None, fail_close: str | None = None) -> Any:
    def factory(system: Any, **_: Any) -> SystemClient:
        if system.id == refuse:
            raise ValueError("the connector refused this system's auth settings")

        async def aclose() -> None:
            closed.append(system.id)
            if system.id == fail_close:
                raise RuntimeError(f"{system.id} close failed")

        return SystemClient(client=None, breaker=None, aclose=aclose)  # the registry only closes it here

    return factory


def test_a_system_the_connector_factory_refuses_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        SystemRegistry.build(_config(), clock=VirtualClock(), rng=random.Random(1),
                             transport_for=lambda s: httpx.MockTransport(lambda r: httpx.Response(500)),
                             connector_factory=_stub_factory([], refuse="cerner_prod"))
    assert caught.value.fields == ("systems.1",)


def test_closing_the_registry_closes_every_system_even_after_a_failure() -> None:
    closed: list[str] = []
    registry = SystemRegistry.build(_config(), clock=VirtualClock(), rng=random.Random(1),
                                    transport_for=lambda s: httpx.MockTransport(lambda r: httpx.Response(500)),
                                    connector_factory=_stub_factory(closed, fail_close="epic_prod"))
    with pytest.raises(RuntimeError, match="epic_prod close failed"):
        run_virtual(registry.aclose)
    assert closed == ["epic_prod", "cerner_prod", "medplum"]


def test_public_api_is_exported() -> None:
    import integrations.systems as systems

    assert set(systems.__all__) == {
        "PATIENT_FIELDS", "SUPPORTED_AUTH", "Attempt", "AuthConfig", "BreakerView", "ClientSecretAuth", "ConfigError",
        "ConfigProblem", "ConnectorFactory", "FailoverExhausted", "FailoverReader", "FhirClient", "FieldConflict",
        "FieldRule", "FieldValue", "Identifier", "PatientSync", "PatientSyncReport", "PoolLimitedTransport",
        "PoolLimits", "PoolStats", "PrivateKeyJwtAuth", "RateLimitSettings", "RegisteredSystem", "RegistryConfig",
        "SourcedResource",
        "SystemClient", "SystemConfig", "SystemRegistry", "SystemResult", "SystemStatus", "SystemsError",
        "TransportFactory", "UnknownSystem", "Vendor", "build_connector", "compare", "find_patients",
        "http_transport", "load_registry_config", "refuses_calls", "unavailable",
    }
    for name in systems.__all__:
        assert getattr(systems, name) is not None
