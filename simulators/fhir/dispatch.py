"""Serving the FHIR REST API without FastAPI's per-request machinery: `fhir_asgi` and `FhirFastPath`.

Every FHIR endpoint of `simulators.fhir.api.fhir_router` takes only the request and `str` path
parameters, so FastAPI's per-request dependency solving, its router (which walks every route of the
app) and Starlette's `Route`/`request_response` wrappers buy nothing there; under load they cost more
than the FHIR interaction itself (benchmarks/simulator_throughput.py).

- `fhir_asgi(router)`: an ASGI app serving the router's endpoints. It matches a request the way
  Starlette's `Router` does (the routes in their order, the first full match wins, a path that only
  matches with another method answers 405 with the first such route's `Allow`, nothing at all is 404;
  both raised as `HTTPException`, as a `Route` inside an app does), but only among the routes with as
  many path segments as the request (`{rest:path}` routes end every bucket), and calls the endpoint
  directly. `OutcomeError` from an endpoint is its response (what `OutcomeRoute` does). As with Starlette's
  `Route` (which served Medplum's FHIR API before), a GET route answers HEAD too (Express, which Medplum
  runs on, does the same), where FastAPI's included route says 405; `Allow` lists the methods sorted
  (Starlette's order follows the set's hashing, which changes from process to process).
- `FhirFastPath`: a pure ASGI middleware a vendor adds *innermost* (`app.add_middleware` before its other
  middleware) that hands every request under `prefix` to the `fhir_asgi` app, with the handling of the
  app's exception handlers that FastAPI's `ExceptionMiddleware` would give it (by status for an
  `HTTPException`, else by the exception's class; none: re-raised to `ServerErrorMiddleware`, a 500).
  Only exceptions raised before the response starts are handled (`FhirDispatcher.respond` returns the
  response unsent), so `send` is not wrapped; an exception while sending propagates as it is.
  The router stays included in the FastAPI app under the same prefix, where it documents the API in
  `/openapi.json` (and would serve a path the prefix pattern does not take, e.g. one with a newline).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.fhir.outcome import OutcomeError

__all__ = ["FhirDispatcher", "FhirFastPath", "fhir_asgi"]

Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Target:
    regex: re.Pattern[str]
    methods: frozenset[str]
    allow: str  # the Allow header of a 405, as Starlette's Route writes it
    endpoint: Endpoint


def _segments(path: str) -> int:
    stripped = path.strip("/")
    return stripped.count("/") + 1 if stripped else 0


def _route_path(scope: Scope) -> str:
    """The path relative to the mount (Starlette's `get_route_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    if path[len(root)] == "/":
        return path[len(root):]
    return path


def _target(route: APIRoute) -> _Target:
    starlette = Route(route.path, route.endpoint, methods=sorted(route.methods or ()))
    for name, convertor in starlette.param_convertors.items():
        if convertor.convert("x/y") != "x/y":
            raise ValueError(f"{route.path}: parameter {name} is not a plain string")
    methods = starlette.methods or set()
    return _Target(starlette.path_regex, frozenset(methods), ", ".join(sorted(methods)), route.endpoint)


class FhirDispatcher:
    """The endpoints of a FHIR router as one ASGI app (see the module docstring)."""

    def __init__(self, routes: list[APIRoute]) -> None:
        targets = [(route.path, _target(route)) for route in routes]
        anywhere = [target for path, target in targets if ":path}" in path]
        fixed = [(path, target) for path, target in targets if ":path}" not in path]
        counts = {_segments(path) for path, _ in fixed}
        self._buckets = {n: tuple([t for path, t in fixed if _segments(path) == n] + anywhere) for n in counts}
        self._fallback = tuple(anywhere)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(scope, receive, send)
        await response(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> Response:
        """The endpoint's response, not sent yet; raises `HTTPException` (405, 404) as Starlette's router."""
        path = _route_path(scope)
        method = scope["method"]
        partial: _Target | None = None
        for target in self._buckets.get(_segments(path), self._fallback):
            match = target.regex.match(path)
            if match is None:
                continue
            if method not in target.methods:
                partial = partial or target
                continue
            params = match.groupdict()
            outer = scope.get("path_params")
            scope["path_params"] = {**outer, **params} if outer else params
            scope["endpoint"] = target.endpoint
            try:  # the route's own parameters only: a mount prefix's (a tenant) are no endpoint argument
                return await target.endpoint(request=Request(scope, receive, send), **params)
            except OutcomeError as exc:
                return exc.response()
        if partial is not None:
            raise HTTPException(status_code=405, headers={"Allow": partial.allow})
        raise HTTPException(status_code=404)


def fhir_asgi(router: Any) -> FhirDispatcher:
    """The endpoints of `router` (a `fhir_router`) served without FastAPI's routing (module docstring)."""
    return FhirDispatcher([route for route in router.routes
                           if isinstance(route, APIRoute) and route.path.startswith("/")])


class FhirFastPath:
    """Pure ASGI middleware: requests under `prefix` go straight to `fhir` (see the module docstring).

    `handlers` is the FastAPI app's `exception_handlers` (read at each error, so later additions count).
    """

    def __init__(self, app: ASGIApp, *, prefix: str, fhir: FhirDispatcher,
                 handlers: Mapping[Any, Callable[..., Any]]) -> None:
        self.app = app
        self.fhir = fhir
        self.handlers = handlers
        self._regex, _, _ = compile_path(prefix.rstrip("/") + "/{path:path}")  # what a Mount matches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root: str = scope.get("root_path", "")
        route_path = _route_path(scope)
        match = self._regex.match(route_path)
        if match is None:
            await self.app(scope, receive, send)
            return
        # the child scope a Mount makes
        params = match.groupdict()
        remaining = "/" + params.pop("path")
        if params:
            scope["path_params"] = {**scope.get("path_params", {}), **params}
        scope["app_root_path"] = scope.get("app_root_path", root)
        scope["root_path"] = root + route_path[:-len(remaining)]
        scope["endpoint"] = self.fhir
        try:
            response = await self.fhir.respond(scope, receive, send)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            request = Request(scope, receive)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            exc.__traceback__ = None
            if response is None:
                return
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        handlers = self.handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:  # Exception (and 500) are ServerErrorMiddleware's
                return handlers[cls]
        return None
