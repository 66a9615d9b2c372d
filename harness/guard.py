"""The lab's one loopback guard: what it connects to and what it listens on.

Every command that talks to a proxy, a simulator or a system under test (`ehrlab run`, `replay`, `load`, the
pytest plugin's lab and Toxiproxy fixtures) asks `check_target` / `toxiproxy_url` before it makes any
connection; every command that listens (`serve`, `service`, `proxy`) asks `check_bind` before it binds.

- Targets: loopback only (an IP literal in 127.0.0.0/8 or ::1, or `localhost`), unless the one opt-in,
  `--allow-remote` (`--ehrlab-allow-remote` for the pytest plugin). A host name other than `localhost` is not
  resolved (no DNS query is sent): it counts as remote, since it cannot be shown to be loopback without asking.
  Today the one target that can be elsewhere is the Toxiproxy server named by `TOXIPROXY_URL`.
- Bind addresses: loopback only, or the unspecified address (0.0.0.0, ::: every interface) with
  `--allow-any-host` or `EHRLAB_CONTAINER=1` (inside a container, whose network namespace is its own).

Each refusal is a `UsageError` (exit 2, one line) raised before anything is connected, bound or run.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

import httpx

from harness.errors import UsageError

#: Environment variable naming a Toxiproxy server's API for real mode (instead of the embedded one).
TOXIPROXY_URL_ENV = "TOXIPROXY_URL"
#: Set to 1 inside a container (docker-compose.yml) to allow `--host 0.0.0.0`, as `--allow-any-host` does.
CONTAINER_ENV = "EHRLAB_CONTAINER"
ALLOW_REMOTE = "--allow-remote"
ALLOW_ANY_HOST = "--allow-any-host"


def is_loopback_host(host: str) -> bool:
    """True for a loopback IP literal or `localhost`; any other name is not resolved and counts as remote."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def check_target(what: str, url: str, *, allow_remote: bool, opt_in: str = ALLOW_REMOTE) -> None:
    """Refuse (UsageError) a URL whose host is outside loopback, unless `allow_remote`. `what` names where the
    URL came from (e.g. `TOXIPROXY_URL`). Nothing is resolved or connected here."""
    if allow_remote:
        return
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        host = ""
    if not is_loopback_host(host):
        raise UsageError(f"{what} points at {host or repr(url)}, outside loopback: the lab would send fault commands "
                         f"and test traffic there. Nothing was run. Pass {opt_in} if that host is meant to be "
                         f"driven")


def toxiproxy_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """`TOXIPROXY_URL` if set (an `http://host:port` URL), None if unset or empty; `UsageError` if malformed."""
    value = (os.environ if environ is None else environ).get(TOXIPROXY_URL_ENV, "").strip()
    if not value:
        return None
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"{TOXIPROXY_URL_ENV} must be a URL like http://127.0.0.1:8474, not {value!r}")
    return value


def toxiproxy_url(environ: Mapping[str, str] | None = None, *, allow_remote: bool,
                  opt_in: str = ALLOW_REMOTE) -> str | None:
    """`TOXIPROXY_URL`, checked: None when unset; `UsageError` when malformed or outside loopback without the
    opt-in."""
    url = toxiproxy_url_from_env(environ)
    if url is not None:
        check_target(TOXIPROXY_URL_ENV, url, allow_remote=allow_remote, opt_in=opt_in)
    return url


def any_host_allowed(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """True when binding every interface was asked for explicitly: the flag, or `EHRLAB_CONTAINER=1`."""
    return flag or (os.environ if environ is None else environ).get(CONTAINER_ENV, "").strip() == "1"


def check_bind(host: str, *, any_host: bool, what: str = "--host") -> None:
    """Refuse (UsageError) a bind address other than loopback, or the unspecified address without the opt-in
    (`any_host`, from `any_host_allowed`)."""
    if is_loopback_host(host) or (any_host and _is_unspecified(host)):
        return
    if _is_unspecified(host):
        raise UsageError(f"{what} {host}: every interface would serve an unauthenticated API to the network; "
                         f"pass {ALLOW_ANY_HOST} (or set {CONTAINER_ENV}=1 inside a container) to mean it")
    raise UsageError(f"{what} {host!r}: binds a loopback address only (0.0.0.0 or :: with {ALLOW_ANY_HOST} or "
                     f"{CONTAINER_ENV}=1)")
