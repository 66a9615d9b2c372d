"""Schemathesis over an app's own OpenAPI schema, in process and in virtual time: 5xx and schema violations.

The schema comes from the app's `/openapi.json`, and every generated case is sent through an in-process
ASGI transport (`VirtualTransport` for simulators), so no socket and no thread is involved (schemathesis's
own ASGI client runs the app in a thread on a real loop). Each operation gets at most `max_examples`
examples, derandomized, so the run is bounded and repeatable. The caller says which bearer token (or which
headers) a path needs (asked inside the event loop), so generated requests get past authentication and
reach the code behind it.

Every answer goes through schemathesis's response checks (`CHECKS`: no 5xx, a documented status, a
documented content type, a body that matches the documented schema, documented headers); each failure is
reported with the check's name. Each write (POST/PUT/PATCH/DELETE) is also sorted by whether its handler
saw it: `parse_rejected` answers (415, 413, 422 and the 400s of a body that could not be read) were refused
while the request was being parsed, before the handler's own logic (`FuzzResult.write_share`).

Chaos faults that generated admin calls switch on are cleared after each case: a 5xx (or a malformed body)
the chaos layer was asked to inject is not a bug, so such a case is not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness.clock import run_virtual
from simulators.transport import VirtualTransport

BASE_URL = "http://simulator.test"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
#: Texts of the answers a request gets when its body could not be read (simulators' OperationOutcome
#: details, the service's error codes): refused before the handler's own logic ran.
PARSE_MARKERS = ("Unsupported content type", "could not be parsed", "body is empty", "must be a JSON object",
                 "nested too deeply", "exceeds", "malformed_json", '"invalid_request"', "_search takes",
                 "missing_body", "body_too_large")

Runner = Callable[[Callable[[], Awaitable[Any]]], Any]
HeadersFor = Callable[[str], Mapping[str, str]]


class Chaos(Protocol):
    @property
    def faults(self) -> Collection[object]: ...

    def reset(self) -> None: ...


class NoChaos:
    """For an app without a chaos layer."""

    faults: tuple[object, ...] = ()

    def reset(self) -> None:
        pass


def parse_rejected(status: int, text: str) -> bool:
    """True if this answer refused the request while reading it (see the module docstring)."""
    if status in (413, 415):
        return True
    return status in (400, 422) and any(marker in text for marker in PARSE_MARKERS)


@dataclass
class FuzzResult:
    operations: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)  # 5xx and failed checks, one line each
    statuses: Counter[int] = field(default_factory=Counter)  # every answer's status, to show cases got through
    writes: int = 0
    writes_parse_rejected: int = 0
    write_statuses: Counter[int] = field(default_factory=Counter)

    @property
    def write_share(self) -> float:
        """The share of writes that reached their handler (not refused while the request was parsed)."""
        return 1.0 - self.writes_parse_rejected / self.writes if self.writes else 0.0

    def summary(self) -> str:
        statuses = dict(sorted(self.write_statuses.items()))
        return (f"{self.operations} operations, {self.cases} cases, {self.writes} writes, "
                f"{self.write_share:.0%} reached the handler; write statuses {statuses}")


async def _get_schema(transport: httpx.AsyncBaseTransport) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.get("/openapi.json")
    response.raise_for_status()
    raw = response.json()
    assert isinstance(raw, dict)
    return raw


async def _send(transport: httpx.AsyncBaseTransport, kwargs: dict[str, Any], headers_for: HeadersFor) -> httpx.Response:
    headers = dict(kwargs.get("headers") or {})
    headers.update(headers_for(httpx.URL(kwargs["url"]).path))  # in the loop: token stores read the virtual clock
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif "data" in kwargs:
        body["content" if isinstance(kwargs["data"], bytes | str) else "data"] = kwargs["data"]
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                                    **body)


def bearer(token_for: Callable[[str], str | None]) -> HeadersFor:
    """`headers_for` from a path -> bearer token function."""

    def headers_for(path: str) -> Mapping[str, str]:
        token = token_for(path)
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    return headers_for


def fuzz_openapi(app: Any, chaos: Chaos, token_for: Callable[[str], str | None], *, max_examples: int,
                 skipped: Collection[tuple[str, str]] = ()) -> FuzzResult:
    """Run every operation of a simulator's schema (but `skipped` (METHOD, path) pairs), each case on a fresh
    virtual loop; report 5xx answers and failed checks."""
    return fuzz_transport(VirtualTransport(app), chaos, bearer(token_for), max_examples=max_examples,
                          skipped=skipped, run=run_virtual)


def fuzz_transport(transport: httpx.AsyncBaseTransport, chaos: Chaos, headers_for: HeadersFor, *,
                   max_examples: int, run: Runner, skipped: Collection[tuple[str, str]] = ()) -> FuzzResult:
    """`fuzz_openapi` over any ASGI transport, each coroutine run by `run` (one long-lived loop, or a fresh one)."""
    schema = schemathesis.openapi.from_dict(run(lambda: _get_schema(transport)))
    result = FuzzResult()
    for found in schema.get_all_operations():
        operation = found.ok()
        if (operation.method.upper(), operation.path) in skipped:
            continue
        result.operations += 1
        _fuzz_operation(operation, transport, chaos, headers_for, max_examples, run, result)
    return result


def _fuzz_operation(operation: Any, transport: httpx.AsyncBaseTransport, chaos: Chaos, headers_for: HeadersFor,
                    max_examples: int, run: Runner, result: FuzzResult) -> None:
    method = operation.method.upper()

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        response = run(lambda: _send(transport, kwargs, headers_for))
        assert isinstance(response, httpx.Response)
        result.cases += 1
        result.statuses[response.status_code] += 1
        if method in WRITES:
            result.writes += 1
            result.write_statuses[response.status_code] += 1
            result.writes_parse_rejected += parse_rejected(response.status_code, response.text)
        injected = bool(chaos.faults)
        chaos.reset()
        if injected:
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # every failed check, one line each
            for failure in group.exceptions:
                result.failures.append(f"{method} {operation.path} ({kwargs['url']}) -> {response.status_code}: "
                                       f"{failure.title}: {' '.join(failure.message.split())[:200]}")

    check()
