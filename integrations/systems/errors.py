"""The multi-system layer's one error tree. Every failure it raises at a caller is a `SystemsError`.

```
SystemsError             root (an `integrations.errors.IntegrationError`)
├── ConfigError          a registry configuration refused: `problems` name each field and why
├── UnknownSystem        a system id the registry does not hold
└── FailoverExhausted    no configured system could serve a read: `attempts` says why, system by system
```

`ConfigError` is also a `ValueError` (a bad value was given). Errors of one FHIR call stay in the
connector's tree (`integrations.fhir.errors.ConnectorError`): a read that fails on the primary for a
reason failover cannot help (404, 403, 400) is re-raised unchanged. A multi-system patient sync never
raises for one system's failure; the report says which system failed and why.

No message carries a secret, a patient identifier or any resource value.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.errors import IntegrationError


class SystemsError(IntegrationError):
    """Root of the tree."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One refused field: its dotted path (`systems.1.auth.client_secret`) and the reason. Never the value."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ConfigError(SystemsError, ValueError):
    """The configuration of the systems registry is invalid."""

    def __init__(self, problems: tuple[ConfigProblem, ...]) -> None:
        if not problems:
            raise ValueError("a ConfigError needs at least one problem")
        self.problems = problems
        detail = "; ".join(str(p) for p in problems)
        super().__init__(f"invalid systems configuration ({len(problems)} problem(s)): {detail}")

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.problems)


class UnknownSystem(SystemsError, KeyError):
    """No system with this id is configured."""

    def __init__(self, system_id: str, known: tuple[str, ...]) -> None:
        self.system_id = system_id
        self.known = known
        super().__init__(f"unknown system {system_id!r} (configured: {', '.join(known) or 'none'})")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Attempt:
    """Why one system did not serve a failover read: an error class name, or `not_found` / `ambiguous`."""

    system_id: str
    reason: str


class FailoverExhausted(SystemsError):
    """The primary and every fallback failed or did not hold the patient; `attempts` in the order tried."""

    def __init__(self, resource_type: str, attempts: tuple[Attempt, ...]) -> None:
        self.resource_type = resource_type
        self.attempts = attempts
        tried = ", ".join(f"{a.system_id} ({a.reason})" for a in attempts)
        super().__init__(f"no system could serve the {resource_type} read; tried {tried}")
