"""Binding every interface (containers) is refused unless asked for explicitly."""

from __future__ import annotations

import pytest

from harness import service_cmd
from harness.errors import UsageError
from harness.serve_cmd import any_host_allowed
from simulators.server import _loopback_socket


def test_any_host_needs_the_flag_or_the_container_variable() -> None:
    assert not any_host_allowed(False, {})
    assert not any_host_allowed(False, {"EHRLAB_CONTAINER": "yes"})
    assert any_host_allowed(True, {})
    assert any_host_allowed(False, {"EHRLAB_CONTAINER": "1"})


def test_serve_refuses_every_interface_by_default() -> None:
    with pytest.raises(ValueError, match="loopback IP address only"):
        _loopback_socket("0.0.0.0", 0)


def test_serve_binds_every_interface_when_allowed_but_never_a_chosen_remote_address() -> None:
    sock = _loopback_socket("0.0.0.0", 0, any_host=True)
    try:
        assert sock.getsockname()[0] == "0.0.0.0"
    finally:
        sock.close()
    with pytest.raises(ValueError, match="when allowed"):
        _loopback_socket("10.1.2.3", 0, any_host=True)


def test_service_refuses_every_interface_without_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EHRLAB_CONTAINER", raising=False)
    with pytest.raises(UsageError, match="--allow-any-host"):
        service_cmd.run(host="0.0.0.0", port=0, seed=1, db=None)
    with pytest.raises(UsageError, match="--medplum-url"):
        service_cmd.run(host="127.0.0.1", port=0, seed=1, db=None, medplum_url="medplum:8000")
    with pytest.raises(UsageError, match="--redis"):
        service_cmd.run(host="127.0.0.1", port=0, seed=1, db=None, redis_url="http://redis:6379")
