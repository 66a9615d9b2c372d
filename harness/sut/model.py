"""The scenario's `sut:` section (an external system under test, real mode only) and its `sut_http` workload
streams. Validation only: `harness.sut.process` starts and stops the SUT, `harness.sut.http` drives it.

    sut:
      command: [python, app.py]          # argv, no shell; omit it to attach to a running SUT at `url`
      env: {EHR_URL: "{medplum.base_url}", PORT: "{sut.port}"}
      url: http://127.0.0.1:{port}       # {port}: a free loopback port the lab picks (with `command` only)
      ready: {path: /health, within: 20s}
      stop: {signal: SIGTERM, grace: 5s}
    workload:
      - {operation: sut_http, method: POST, path: /ingest, body: {...}, rate: 1/s}

Templates use `harness.sut.template`'s syntax; an unknown placeholder is refused when the file is loaded, at the
field's line.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from harness.durations import Duration, Rate
from harness.scenario.issues import Issues, located
from harness.sut.template import TemplateError, known_names, placeholders

EnvName = str
#: The one placeholder of `sut.url`: the loopback port the lab picks for a SUT it starts.
PORT = "port"


def _vendors() -> tuple[str, ...]:
    from harness.vendors import VENDORS

    return tuple(sorted(VENDORS))


def check_template(issues: Issues, loc: tuple[str | int, ...], template: str, allowed: frozenset[str], *,
                   env_ok: bool = False) -> list[str]:
    """Record a malformed template or an unknown placeholder at `loc`; return the names it uses."""
    try:
        names = placeholders(template)
    except TemplateError as exc:
        issues.add(loc, str(exc))
        return []
    for name in names:
        if name in allowed or (env_ok and name.startswith("env.")):
            continue
        hint = " ({env.NAME} is allowed in headers only)" if name.startswith("env.") else ""
        issues.add(loc, f"unknown placeholder {{{name}}}{hint} (known: {{scratch}}, {{seed}}, {{sut.port}}, "
                        "{sut.url}, {<vendor>.base_url|token_url|client_id|client_secret})")
    return names


class SutReady(BaseModel):
    """`sut.ready`: GET `path` on the SUT's URL until it answers 2xx, for at most `within`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="/health", pattern=r"^/")
    within: Duration = 20.0

    @model_validator(mode="after")
    def _positive(self) -> SutReady:
        if self.within <= 0:
            raise located(("within",), "ready.within must be positive")
        return self


class SutStop(BaseModel):
    """`sut.stop`: the signal that asks the SUT to stop, and how long it may take before SIGKILL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: Literal["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGKILL"] = "SIGTERM"
    grace: Duration = 5.0


class SutSettings(BaseModel):
    """`sut:` an external system under test, started by the lab (`command`) or already running (`url` alone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = Field(default=None, min_length=1, max_length=200,
                                      description="argv of the SUT's process (no shell)")
    env: dict[str, str] = Field(default_factory=dict, max_length=200,
                                description="environment of the process (templates), besides the lab's PATH")
    url: str = Field(default="http://127.0.0.1:{port}", description="where the lab sends requests")
    ready: SutReady = SutReady()
    stop: SutStop = SutStop()

    @model_validator(mode="after")
    def _templates(self) -> SutSettings:
        issues = Issues()
        allowed = known_names(_vendors())
        if self.command is None and self.env:
            issues.add(("env",), "sut.env needs sut.command (the lab starts no process to give it to)")
        for name, value in self.env.items():
            if not name or "=" in name or "\0" in name:
                issues.add(("env", name), f"{name!r} is not an environment variable name")
            check_template(issues, ("env", name), value, allowed)
        try:
            url_names = placeholders(self.url)
        except TemplateError as exc:
            issues.add(("url",), str(exc))
            url_names = []
        for name in url_names:
            if name != PORT:
                issues.add(("url",), f"unknown placeholder {{{name}}} in sut.url (only {{port}})")
            elif self.command is None:
                issues.add(("url",), "{port} in sut.url needs sut.command: to attach to a running SUT, give its "
                                     "URL, e.g. http://127.0.0.1:8080")
        try:
            parsed = httpx.URL(self.url.replace("{port}", "1"))
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(self.url)
        except (httpx.InvalidURL, ValueError):
            issues.add(("url",), f"sut.url must be an http(s) URL like http://127.0.0.1:{{port}}, not {self.url!r}")
        issues.raise_if_any()
        return self

    def vendors(self) -> list[str]:
        """The vendors the templates refer to (the lab builds them), in first-mention order."""
        vendors = _vendors()
        seen: dict[str, None] = {}
        for value in self.env.values():
            for name in placeholders(value):
                head = name.split(".", 1)[0]
                if head in vendors:
                    seen.setdefault(head)
        return list(seen)


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class SutHttpStream(BaseModel):
    """A workload stream of HTTP requests to the SUT (`operation: sut_http`), an open model like
    `WorkloadStream`. Each request is one `operation` journal event of vendor `sut`: ok on a 2xx, else
    error `HTTP<status>` or the transport error's class name. `{env.NAME}` in headers is read from the lab's
    environment when the run starts and never journaled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: ClassVar[str] = "sut"  # the journal's `vendor` of these operations (not a simulator)

    operation: Literal["sut_http"]
    method: HttpMethod = "GET"
    path: str = Field(pattern=r"^/", max_length=2000)
    body: JsonValue = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    timeout: Duration = 10.0
    rate: Rate
    arrival: Literal["constant", "poisson"] = "constant"
    start: Duration = 0.0
    stop: Duration | None = None
    max_in_flight: int = Field(default=200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _templates(self) -> SutHttpStream:
        issues = Issues()
        allowed = known_names(_vendors())
        check_template(issues, ("path",), self.path, allowed)
        for name, value in self.headers.items():
            check_template(issues, ("headers", name), value, allowed, env_ok=True)
        for loc, text in _strings(self.body, ("body",)):
            check_template(issues, loc, text, allowed)
        if self.timeout <= 0:
            issues.add(("timeout",), "timeout must be positive")
        issues.raise_if_any()
        return self

    def expected_arrivals(self, duration: float) -> float:
        end = min(duration, self.stop if self.stop is not None else duration)
        return self.rate * max(0.0, end - self.start)

    def env_names(self) -> list[str]:
        """The environment variables the headers read."""
        return [n[4:] for v in self.headers.values() for n in placeholders(v) if n.startswith("env.")]


def _strings(value: JsonValue, loc: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string of a JSON value (keys' values and list items), with where it is."""
    if isinstance(value, str):
        return [(loc, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _strings(v, (*loc, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _strings(v, (*loc, i))]
    return []


def render_json(value: JsonValue, values: dict[str, str]) -> JsonValue:
    """A JSON value with every string rendered as a template."""
    from harness.sut.template import render

    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, dict):
        return {k: render_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, values) for v in value]
    return value
