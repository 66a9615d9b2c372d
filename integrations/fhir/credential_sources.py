"""Credential sources that live outside the process: environment variables and a JSON file.

Both are read again on every `load()` (the auth flows load before every token request), so a rotation
done by a deployment tool or a secrets agent needs no restart (runbook `000_030ea53f0735abf7.txt §1`,
`002_437ee203264dfa64.txt §10.2`). Both return credentials newest first, and raise
`ConfigurationError` naming the variable or field (never its value) when something is missing or
unreadable.

`EnvCredentials(prefix)` reads, with `prefix` e.g. `"MEDPLUM_"` or `"EPIC_"` (the runbooks' names:
002 §2.1 `MEDPLUM_CLIENT_ID` / `MEDPLUM_CLIENT_SECRET`, 000 §1 `EPIC_CLIENT_ID` / `EPIC_PRIVATE_KEY_PATH`):

| variable                                  | meaning                                                     |
|-------------------------------------------|-------------------------------------------------------------|
| `{p}CLIENT_ID`                            | required                                                    |
| `{p}CLIENT_SECRET`                        | the current secret                                          |
| `{p}PRIVATE_KEY_PATH`, `{p}KEY_ID`        | the current signing key (PEM file) and its `kid` (SMART needs a kid) |
| `{p}KEY_ALG`                              | RS384 or ES384; default from the key (RSA: RS384, EC P-384: ES384) |
| the same with `_PREVIOUS` appended        | the credential being rotated out, offered as the fallback   |
| `{p}CLIENT_ID_PREVIOUS`                   | when the rotation also changed the client id (000 §1 does)  |

`FileCredentials(path)` reads a JSON file (replace it atomically, e.g. write and rename):

```json
{"client_id": "ehrlab-epic-1", "credentials": [
  {"label": "2026-q2", "private_key_path": "keys/2026-q2.pem", "kid": "k-2026-q2"},
  {"label": "2026-q1", "private_key_path": "keys/2026-q1.pem", "kid": "k-2026-q1"}]}
```

An entry has `client_secret`, or `private_key_path` (relative to the file) / `private_key_pem` with a
`kid`; `client_id` per entry overrides the file's. The file is parsed again only when its size or
modification time changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from integrations.fhir.auth_errors import ConfigurationError
from integrations.fhir.credentials import Algorithm, ClientCredentials, Credential, SigningKey, SigningKeyCredentials

PREVIOUS = "_PREVIOUS"


def load_signing_key(pem: bytes, alg: str | None = None) -> tuple[SigningKey, Algorithm]:
    """A private RSA or EC P-384 key from PEM, and the algorithm it signs with; `ValueError` otherwise."""
    key: SigningKey
    try:
        key = ECKey.import_key(pem)
    except Exception:
        try:
            key = RSAKey.import_key(pem)
        except Exception:
            raise ValueError("not a PEM-encoded RSA or EC key") from None
    if not key.is_private:
        raise ValueError("a public key cannot sign client assertions")
    inferred: Algorithm | None = "RS384" if isinstance(key, RSAKey) else (
        "ES384" if key.curve_name == "P-384" else None)
    if inferred is None:
        raise ValueError("an EC key must be on curve P-384 (ES384)")
    if alg is not None and alg != inferred:
        raise ValueError(f"the key does not fit {alg!r} (it signs {inferred})")
    return key, inferred


class EnvCredentials:
    """Credentials from environment variables; see the module docstring."""

    def __init__(self, prefix: str, *, environ: Mapping[str, str] | None = None, vendor: str = "") -> None:
        self.prefix = prefix
        self._environ = environ
        self._vendor = vendor

    def __repr__(self) -> str:
        return f"EnvCredentials(prefix={self.prefix!r})"

    def load(self) -> Sequence[Credential]:
        env = os.environ if self._environ is None else self._environ
        p = self.prefix
        problems: list[str] = []
        client_id = env.get(f"{p}CLIENT_ID", "").strip()
        if not client_id:
            raise ConfigurationError(self._vendor, [f"{p}CLIENT_ID: missing"])
        found: list[Credential] = []
        for suffix in ("", PREVIOUS):
            owner = env.get(f"{p}CLIENT_ID{suffix}", "").strip() or client_id
            secret_var = f"{p}CLIENT_SECRET{suffix}"
            secret = env.get(secret_var, "")
            if secret:
                found.append(ClientCredentials(owner, secret, label=secret_var))
            key_var = f"{p}PRIVATE_KEY_PATH{suffix}"
            path = env.get(key_var, "").strip()
            if path:
                kid = env.get(f"{p}KEY_ID{suffix}", "").strip()
                credential = _key_credential(owner, Path(path), kid, env.get(f"{p}KEY_ALG{suffix}") or None,
                                             label=key_var, field=key_var, problems=problems)
                if credential is not None:
                    found.append(credential)
        if not found and not problems:
            problems.append(f"{p}CLIENT_SECRET or {p}PRIVATE_KEY_PATH: missing")
        if problems:
            raise ConfigurationError(self._vendor, problems)
        return tuple(found)


def _key_credential(client_id: str, path: Path, kid: str, alg: str | None, *, label: str, field: str,
                    problems: list[str], pem: bytes | None = None) -> SigningKeyCredentials | None:
    if not kid:
        problems.append(f"{field}: a signing key needs a key id (kid)")
        return None
    if pem is None:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            problems.append(f"{field}: the key file cannot be read ({type(exc).__name__})")
            return None
    try:
        key, algorithm = load_signing_key(pem, alg)
    except ValueError as exc:
        problems.append(f"{field}: {exc}")
        return None
    return SigningKeyCredentials(client_id, key, kid, algorithm, label=label)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    label: str = Field(min_length=1, max_length=128)
    client_id: str | None = Field(default=None, min_length=1)
    client_secret: SecretStr | None = Field(default=None, min_length=1)
    private_key_path: str | None = Field(default=None, min_length=1)
    private_key_pem: SecretStr | None = Field(default=None, min_length=1)
    kid: str | None = Field(default=None, min_length=1)
    alg: Literal["RS384", "ES384"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _Entry:
        kinds = [self.client_secret is not None, self.private_key_path is not None, self.private_key_pem is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of client_secret, private_key_path, private_key_pem")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    credentials: list[_Entry] = Field(min_length=1)


class FileCredentials:
    """Credentials from a JSON file, newest first; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, vendor: str = "") -> None:
        self.path = Path(path)
        self._vendor = vendor
        self._stamp: tuple[int, int, int] | None = None
        self._cached: tuple[Credential, ...] = ()

    def __repr__(self) -> str:
        return f"FileCredentials(path={str(self.path)!r})"

    def load(self) -> Sequence[Credential]:
        name = self.path.name
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp == self._stamp:
                return self._cached
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(self._vendor, [f"{name}: cannot be read ({type(exc).__name__})"]) from None
        try:
            parsed = _File.model_validate(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(self._vendor, _problems(name, exc)) from None
        problems: list[str] = []
        found: list[Credential] = []
        for index, entry in enumerate(parsed.credentials):
            owner = entry.client_id or parsed.client_id
            field = f"{name}: credentials[{index}] ({entry.label})"
            if entry.client_secret is not None:
                found.append(ClientCredentials(owner, entry.client_secret.get_secret_value(), label=entry.label))
                continue
            pem = None if entry.private_key_pem is None else entry.private_key_pem.get_secret_value().encode()
            key_path = self.path.parent / (entry.private_key_path or "")
            credential = _key_credential(owner, key_path, entry.kid or "", entry.alg, label=entry.label,
                                         field=field, problems=problems, pem=pem)
            if credential is not None:
                found.append(credential)
        if problems:
            raise ConfigurationError(self._vendor, problems)
        self._stamp, self._cached = stamp, tuple(found)
        return self._cached


def _problems(name: str, exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{name}: {'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
                for error in exc.errors(include_input=False)]
    return [f"{name}: not a JSON document"]
