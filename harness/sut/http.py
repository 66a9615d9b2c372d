"""The `sut_http` workload operation: one HTTP request to the system under test.

Each request is one `operation` journal event (the runner's `_Workload`): ok on a 2xx; otherwise a
`SutHttpError` whose `code` is journaled as the error, `HTTP<status>` or the transport error's class name
(`ConnectError`, `ReadTimeout`, ...). Header values may read the lab's environment (`{env.NAME}`, read once when
the run starts); nothing of a request's headers or body is journaled.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpx

from harness.errors import LabError
from harness.sut.model import SutHttpStream, render_json
from harness.sut.process import RunningSut
from harness.sut.template import render
from harness.workload.operations import WorkloadError


class SutHttpError(WorkloadError):
    """The SUT answered other than 2xx, or could not be reached."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self._code = code

    @property
    def code(self) -> str:
        return self._code


async def open_client(stack: AsyncExitStack, sut: RunningSut) -> httpx.AsyncClient:
    """The lab's HTTP client to the SUT (closed with the lab)."""
    client = httpx.AsyncClient(base_url=sut.url, trust_env=False, timeout=None)
    stack.push_async_callback(client.aclose)
    return client


def request_maker(client: httpx.AsyncClient, stream: SutHttpStream, sut: RunningSut) -> Callable[[], Awaitable[None]]:
    """The operation of one stream: its path, headers and body rendered once (the lab's values do not change
    during a run), then one request a call."""
    values = dict(sut.values)
    for name in stream.env_names():
        if name not in os.environ:
            raise LabError(f"a sut_http header reads {{env.{name}}}, but {name} is not set in the environment")
        values[f"env.{name}"] = os.environ[name]
    path = render(stream.path, values)
    headers = {name: render(value, values) for name, value in stream.headers.items()}
    body = render_json(stream.body, values)
    timeout = stream.timeout

    async def request() -> None:
        try:
            response = await client.request(stream.method, path, headers=headers, timeout=timeout,
                                            json=body if body is not None else None)
        except httpx.HTTPError as exc:
            raise SutHttpError(type(exc).__name__) from exc
        if not response.is_success:
            raise SutHttpError(f"HTTP{response.status_code}")

    return request
