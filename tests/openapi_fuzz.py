"""Schemathesis over a simulator's own OpenAPI schema, in process and in virtual time: collect every 5xx.

The schema comes from the simulator's `/openapi.json`, and every generated case is sent through
`VirtualTransport`, so no socket and no thread is involved (schemathesis's own ASGI client runs the app
in a thread on a real loop). Each operation gets at most `max_examples` examples, derandomized, so the
run is bounded and repeatable. The caller says which bearer token a path needs (asked inside the event
loop), so generated requests get past authentication and reach the code behind it.

Chaos faults that generated admin calls switch on are cleared after each case: a 5xx the chaos layer
was asked to inject is not a bug.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from harness.clock import run_virtual
from simulators.transport import VirtualTransport

BASE_URL = "http://simulator.test"


class Chaos(Protocol):
    @property
    def faults(self) -> Collection[object]: ...

    def reset(self) -> None: ...


@dataclass
class FuzzResult:
    operations: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # every answer's status, to show cases got through


async def _get_schema(app: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=VirtualTransport(app), base_url=BASE_URL) as client:
        response = await client.get("/openapi.json")
    response.raise_for_status()
    raw = response.json()
    assert isinstance(raw, dict)
    return raw


async def _send(app: Any, kwargs: dict[str, Any], token_for: Callable[[str], str | None]) -> httpx.Response:
    headers = dict(kwargs.get("headers") or {})
    token = token_for(httpx.URL(kwargs["url"]).path)  # in the loop: token stores read the virtual clock
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif "data" in kwargs:
        body["content" if isinstance(kwargs["data"], bytes | str) else "data"] = kwargs["data"]
    async with httpx.AsyncClient(transport=VirtualTransport(app)) as client:
        return await client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                                    **body)


def fuzz_openapi(app: Any, chaos: Chaos, token_for: Callable[[str], str | None], *, max_examples: int,
                 skipped: Collection[tuple[str, str]] = ()) -> FuzzResult:
    """Run every operation of `app`'s schema (but `skipped` (METHOD, path) pairs); report 5xx answers."""
    schema = schemathesis.openapi.from_dict(run_virtual(lambda: _get_schema(app)))
    result = FuzzResult()
    for found in schema.get_all_operations():
        operation = found.ok()
        if (operation.method.upper(), operation.path) in skipped:
            continue
        result.operations += 1

        @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url=BASE_URL)
            response = run_virtual(lambda: _send(app, kwargs, token_for))
            result.cases += 1
            result.statuses[response.status_code] += 1
            injected = bool(chaos.faults)
            chaos.reset()
            if response.status_code >= 500 and not injected:
                result.failures.append(
                    f"{kwargs['method']} {kwargs['url']} -> {response.status_code}: {response.text[:200]}")

        check()
    return result
