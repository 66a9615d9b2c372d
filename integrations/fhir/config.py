"""Start-up validation of a vendor client's auth configuration: fail fast, name every problem, echo nothing.

Runbook `002_437ee203264dfa64.txt §2.5` ("Environment Validation": "Fail-fast startup", "Detects
placeholder secrets, localhost URLs") and its Appendix A (`MEDPLUM_CLIENT_SECRET` "min 20 chars").
`validate_auth_config` checks, and raises one `ConfigurationError` listing every problem found:

- missing values: base URL, token URL, client id, and at least one credential;
- placeholder values copied from a runbook or a template: `[ROTATE_MONTHLY]` and `[64_HEX_CHARS]`
  (002 §5.2), `your_epic_client_secret` (004 "Configuration"), `<...>`, `${...}`, `changeme`,
  `placeholder`, `xxxx...`, one character repeated, and the like;
- client secrets shorter than `MIN_SECRET_LENGTH` (20; 002 Appendix A);
- URLs that are not absolute, carry user info (credentials never travel in a URL), a query or a
  fragment, or use plain `http` outside the lab. Inside the lab means loopback (`127.0.0.0/8`, `::1`,
  `localhost`, `*.localhost`) or a `*.test` host (RFC 6761 reserves both; the lab's in-process
  simulators are `http://<vendor>.ehrlab.test`); traffic to anything else must be `https` (002 §10.1:
  "TLS 1.2+ for all traffic"). In production 002 §2.5 flags localhost URLs as well; that is a deployment
  check the lab, whose simulators are on loopback, leaves to the deployment (`allow_loopback=False`).

`VendorAuthConfig.from_env(vendor, prefix)` reads `{prefix}BASE_URL`, `{prefix}TOKEN_URL` and the
credentials (`integrations.fhir.credential_sources.EnvCredentials`) once, and validates them.
Messages name the variable or the credential's label, never a value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from integrations.fhir.auth_errors import ConfigurationError
from integrations.fhir.credential_sources import EnvCredentials
from integrations.fhir.credentials import ClientCredentials, Credential, CredentialSource

#: 002_437ee203264dfa64.txt Appendix A: `MEDPLUM_CLIENT_SECRET` "OAuth2 client secret (min 20 chars)".
MIN_SECRET_LENGTH = 20

#: Found anywhere in a value: long or delimited enough that a random secret never contains one by chance.
_PLACEHOLDER_PARTS = ("changeme", "change_me", "change-me", "placeholder", "replace_me", "replace-me", "replaceme",
                      "your_", "your-", "yoursecret", "example", "redacted", "insert_", "insert-")
#: Placeholders as a whole value or as one word of it (`TODO-set-me`, `xxx_secret`).
_PLACEHOLDER_WORDS = frozenset({"secret", "password", "none", "null", "undefined", "test", "default", "todo", "fixme",
                                "tbd", "xxx", "xxxx", "dummy", "sample", "changeit"})
_TEMPLATE = re.compile(r"^(\[.*\]|<.*>|\$\{.*\}|\{\{.*\}\}|%\(.*\)s)$")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def is_placeholder(value: str, *, words: bool = True) -> bool:
    """True for a value that is a template's stand-in rather than a real one. `words=False` (host names,
    where `test` is a real label) skips the single-word placeholders."""
    folded = value.strip().casefold()
    if not folded:
        return False
    if _TEMPLATE.match(folded) or len(set(folded)) == 1 or any(part in folded for part in _PLACEHOLDER_PARTS):
        return True
    return words and (folded in _PLACEHOLDER_WORDS
                      or any(word in _PLACEHOLDER_WORDS for word in _WORD_SPLIT.split(folded)))


def inside_lab(host: str) -> bool:
    """Loopback or a `.test` host (RFC 6761): plain HTTP to it never leaves the machine or the lab."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".test")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problems(field: str, value: str | None, *, allow_loopback: bool = True) -> list[str]:
    """What is wrong with the URL in `field` (empty when nothing is)."""
    if value is None or not value.strip():
        return [f"{field}: missing"]
    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        return [f"{field}: not a URL"]
    problems = []
    if url.scheme not in ("http", "https") or not url.host:
        return [f"{field}: not an absolute http(s) URL"]
    if url.userinfo:
        problems.append(f"{field}: must not carry credentials (user info)")
    if url.query or url.fragment:
        problems.append(f"{field}: must not carry a query or fragment")
    if is_placeholder(url.host, words=False):
        problems.append(f"{field}: the host is a placeholder")
    lab = inside_lab(url.host)
    if url.scheme != "https" and not (lab and allow_loopback):
        problems.append(f"{field}: must use https outside the lab")
    return problems


def secret_problems(field: str, secret: str | None) -> list[str]:
    if secret is None or not secret.strip():
        return [f"{field}: missing"]
    if is_placeholder(secret):
        return [f"{field}: is a placeholder, not a real secret"]
    if len(secret) < MIN_SECRET_LENGTH:
        return [f"{field}: shorter than {MIN_SECRET_LENGTH} characters"]
    return []


def credential_problems(credentials: Sequence[Credential]) -> list[str]:
    """What is wrong with each credential, named by its label (or its position)."""
    if not credentials:
        return ["credentials: none configured"]
    problems: list[str] = []
    for index, credential in enumerate(credentials):
        name = credential.label or f"credentials[{index}]"
        if not credential.client_id.strip():
            problems.append(f"{name}: client id missing")
        elif is_placeholder(credential.client_id):
            problems.append(f"{name}: client id is a placeholder")
        if isinstance(credential, ClientCredentials):
            problems += secret_problems(name, credential.client_secret)
        elif not credential.kid.strip() or is_placeholder(credential.kid):
            problems.append(f"{name}: key id (kid) missing or a placeholder")
    return problems


def validate_auth_config(vendor: str, *, base_url: str | None, token_url: str | None,
                         credentials: CredentialSource | Sequence[Credential], allow_loopback: bool = True,
                         fields: tuple[str, str] = ("base_url", "token_url")) -> None:
    """Raise `ConfigurationError` listing every problem (see the module docstring); return if there is none.

    `fields` names the two URLs in messages (e.g. the environment variables they came from).
    """
    problems = url_problems(fields[0], base_url, allow_loopback=allow_loopback)
    problems += url_problems(fields[1], token_url, allow_loopback=allow_loopback)
    if isinstance(credentials, CredentialSource):
        try:
            loaded: Sequence[Credential] = credentials.load()
        except ConfigurationError as exc:
            problems += exc.problems or ["credentials: could not be loaded"]
        else:
            problems += credential_problems(loaded)
    else:
        problems += credential_problems(credentials)
    if problems:
        raise ConfigurationError(vendor, problems)


@dataclass(frozen=True, slots=True)
class VendorAuthConfig:
    """A vendor client's validated endpoints and the source its credentials are reloaded from."""

    vendor: str
    base_url: str
    token_url: str
    credentials: CredentialSource

    @classmethod
    def from_env(cls, vendor: str, prefix: str, *, environ: Mapping[str, str] | None = None,
                 allow_loopback: bool = True) -> VendorAuthConfig:
        """Read `{prefix}BASE_URL`, `{prefix}TOKEN_URL` and the credentials once; fail fast when anything is wrong."""
        env = os.environ if environ is None else environ
        base_url, token_url = env.get(f"{prefix}BASE_URL"), env.get(f"{prefix}TOKEN_URL")
        source = EnvCredentials(prefix, environ=environ, vendor=vendor)
        validate_auth_config(vendor, base_url=base_url, token_url=token_url, credentials=source,
                             allow_loopback=allow_loopback, fields=(f"{prefix}BASE_URL", f"{prefix}TOKEN_URL"))
        return cls(vendor=vendor, base_url=(base_url or "").strip(), token_url=(token_url or "").strip(),
                   credentials=source)
