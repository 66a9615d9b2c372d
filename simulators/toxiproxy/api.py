"""Toxiproxy's HTTP API (`api.go`): routing, handlers, status codes, bodies, in Go's exact shapes.

Routing follows gorilla/mux as Toxiproxy configures it: an unclean path (`//proxies`, `/a/../b`) is
redirected (301) to its clean form; an unknown path is 404 `404 page not found`; a known path with
another method is 405 with an empty body (a trailing slash is another path: 404). Middleware runs
only for a matched route, as in mux: the `X-Toxiproxy-Request-Id` header, then the browser block
(`User-Agent: Mozilla/...` gets 403 `User agent not allowed`). Errors are `http.Error` bodies
(`{"error":"...","status":N}` + newline, `text/plain; charset=utf-8`, `nosniff`), except /populate's,
which are JSON with a `proxies` key. Reference: `../shared/reference/toxiproxy.md` §1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.toxiproxy._gojson import (
    BOOL,
    FLOAT32,
    STRING,
    Float32,
    GoJSONError,
    GoPtr,
    GoSlice,
    GoStruct,
    decode,
    encode,
    parse,
)
from simulators.toxiproxy.proxy import (
    DIRECTIONS,
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    AlreadyStarted,
    ApiError,
    Proxy,
    ProxyCollection,
    bad_request,
    missing_field,
    toxic_json,
)
from simulators.toxiproxy.toxics import KINDS, Toxic, ToxicKind

log = logging.getLogger(__name__)

#: What /version reports: the Toxiproxy API version this server follows, marked as ehrlab's.
VERSION = "2.12.0-ehrlab"

_LOGGER = GoPtr(GoStruct("zerolog.Logger", "Logger"))
PROXY_STRUCT = GoStruct("toxiproxy.Proxy", "Proxy", (
    ("name", STRING), ("listen", STRING), ("upstream", STRING), ("enabled", BOOL), ("Logger", _LOGGER)))
_POPULATE_ENTRY = GoStruct('struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }', "", (
    ("name", STRING), ("listen", STRING), ("upstream", STRING), ("Logger", _LOGGER), ("enabled", GoPtr(BOOL))))
POPULATE_TYPE = GoSlice(_POPULATE_ENTRY)
_NOOP = GoStruct("toxics.NoopToxic", "NoopToxic")
TOXIC_WRAPPER = GoStruct("toxics.ToxicWrapper", "ToxicWrapper", (
    ("attributes", _NOOP), ("name", STRING), ("type", STRING), ("stream", STRING), ("toxicity", FLOAT32)))


def _attributes_struct(kind: ToxicKind) -> GoStruct:
    return GoStruct('struct { Attributes interface {} "json:\\"attributes\\"" }', "",
                    (("attributes", kind.go_struct),))


def _update_struct(kind: ToxicKind) -> GoStruct:
    go_name = 'struct { Attributes interface {} "json:\\"attributes\\""; Toxicity float32 "json:\\"toxicity\\"" }'
    return GoStruct(go_name, "", (("attributes", kind.go_struct), ("toxicity", FLOAT32)))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, encode(value).encode(), [("Content-Type", "application/json")])


def text_error(message: str, status: int) -> Response:
    """Go's `http.Error`."""
    return Response(status, (message + "\n").encode(),
                    [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")])


def api_error(error: ApiError) -> Response:
    return text_error(encode({"error": error.message, "status": error.status}), error.status)


def _decode_body(body: bytes, go_type: GoStruct | GoSlice) -> Any:
    try:
        return decode(parse(body), go_type)
    except GoJSONError as exc:
        raise bad_request(str(exc)) from None


Handler = Callable[["Api", dict[str, str], bytes], Awaitable[Response]]


class Api:
    """The handlers, over one `ProxyCollection`. Changes are serialised by one lock."""

    def __init__(self, collection: ProxyCollection, *, metrics: bool = False) -> None:
        self.collection = collection
        self.metrics = metrics
        self.lock = asyncio.Lock()

    async def proxy_index(self, params: dict[str, str], body: bytes) -> Response:
        proxies = self.collection.proxies
        return json_response({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, params: dict[str, str], body: bytes) -> Response:
        fields = _decode_body(body, PROXY_STRUCT) or {}
        if not fields.get("name"):
            raise missing_field("name")
        if not fields.get("upstream"):
            raise missing_field("upstream")
        proxy = self.collection.new(fields["name"], fields.get("listen", ""), fields["upstream"])
        await self.collection.add(proxy, fields.get("enabled", True))
        return json_response(proxy.to_json(), 201)

    async def populate(self, params: dict[str, str], body: bytes) -> Response:
        created, error = await self.apply_populate(body)
        result: dict[str, Any] = {"error": error.message, "status": error.status} if error else {}
        result["proxies"] = [proxy.to_json() for proxy in created] or None
        return json_response(result, error.status if error else 201)

    async def apply_populate(self, body: bytes) -> tuple[list[Proxy], ApiError | None]:
        """Go's `PopulateJson`: validate every entry, then add or replace each in order (not atomic)."""
        created: list[Proxy] = []
        try:
            entries = [entry or {} for entry in _decode_body(body, POPULATE_TYPE) or []]
            for index, entry in enumerate(entries, start=1):
                for what in ("name", "upstream"):
                    if not entry.get(what):
                        raise missing_field(f"{what} at proxy {index}")
            for entry in entries:
                proxy = self.collection.new(entry["name"], entry.get("listen", ""), entry["upstream"])
                created.append(await self.collection.add_or_replace(proxy, entry.get("enabled", True)))
        except ApiError as exc:
            return created, exc
        return created, None

    async def proxy_show(self, params: dict[str, str], body: bytes) -> Response:
        return json_response(self.collection.get(params["proxy"]).to_json())

    async def proxy_update(self, params: dict[str, str], body: bytes) -> Response:
        proxy = self.collection.get(params["proxy"])
        fields = _decode_body(body, PROXY_STRUCT) or {}
        await proxy.update(fields.get("listen", proxy.listen), fields.get("upstream", proxy.upstream),
                           fields.get("enabled", proxy.enabled))
        return json_response(proxy.to_json())

    async def proxy_delete(self, params: dict[str, str], body: bytes) -> Response:
        self.collection.remove(params["proxy"])
        return Response(204)

    async def toxic_index(self, params: dict[str, str], body: bytes) -> Response:
        proxy = self.collection.get(params["proxy"])
        return json_response([toxic_json(t) for t in proxy.toxic_list()])

    async def toxic_create(self, params: dict[str, str], body: bytes) -> Response:
        proxy = self.collection.get(params["proxy"])
        wrapper = _decode_body(body, TOXIC_WRAPPER) or {}
        stream = wrapper.get("stream", "downstream")
        if stream.lower() not in DIRECTIONS:
            raise ApiError(*INVALID_STREAM)
        kind_name = wrapper.get("type", "")
        name = wrapper.get("name") or f"{kind_name}_{stream}"
        kind = KINDS.get(kind_name)
        if kind is None:
            raise ApiError(*INVALID_TOXIC_TYPE)
        if proxy.find_toxic(name) is not None:
            raise ApiError(*TOXIC_EXISTS)
        given = (_decode_body(body, _attributes_struct(kind)) or {}).get("attributes", {})
        toxic = Toxic(name, kind, stream, wrapper.get("toxicity", Float32(1.0)),
                      {attr: given.get(attr, 0) for attr in kind.attribute_names})
        await proxy.add_toxic(toxic)
        return json_response(toxic_json(toxic))

    def _toxic(self, params: dict[str, str]) -> tuple[Proxy, Toxic]:
        proxy = self.collection.get(params["proxy"])
        toxic = proxy.find_toxic(params["toxic"])
        if toxic is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        return proxy, toxic

    async def toxic_show(self, params: dict[str, str], body: bytes) -> Response:
        return json_response(toxic_json(self._toxic(params)[1]))

    async def toxic_update(self, params: dict[str, str], body: bytes) -> Response:
        proxy, toxic = self._toxic(params)
        fields = _decode_body(body, _update_struct(toxic.kind)) or {}
        attributes = {**toxic.attributes, **fields.get("attributes", {})}
        await proxy.update_toxic(toxic, attributes, fields.get("toxicity", toxic.toxicity))
        return json_response(toxic_json(toxic))

    async def toxic_delete(self, params: dict[str, str], body: bytes) -> Response:
        proxy, toxic = self._toxic(params)
        await proxy.remove_toxic(toxic)
        return Response(204)

    async def reset(self, params: dict[str, str], body: bytes) -> Response:
        for name in sorted(self.collection.proxies):
            proxy = self.collection.proxies[name]
            with contextlib.suppress(AlreadyStarted):
                await proxy.start()
            await proxy.reset_toxics()
        return Response(204)

    async def version(self, params: dict[str, str], body: bytes) -> Response:
        return Response(200, f'{{"version": "{VERSION}"}}\n'.encode(),
                        [("Content-Type", "application/json;charset=utf-8")])

    async def metrics_text(self, params: dict[str, str], body: bytes) -> Response:
        traffic = self.collection.traffic
        lines: list[str] = []
        for metric, values in (("received", traffic.received), ("sent", traffic.sent)):
            name = f"toxiproxy_proxy_{metric}_bytes_total"
            lines.append(f"# TYPE {name} counter")
            for (direction, listener, proxy, upstream), count in sorted(values.items()):
                labels = ",".join(f'{k}="{_label(v)}"' for k, v in (
                    ("direction", direction), ("listener", listener), ("proxy", proxy), ("upstream", upstream)))
                lines.append(f"{name}{{{labels}}} {count}")
        return Response(200, ("\n".join(lines) + "\n").encode(),
                        [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])

    # routing ---------------------------------------------------------------------------------------

    async def handle(self, method: str, path: str, user_agent: str, body: bytes) -> tuple[Response, bool]:
        """The response, and whether the route matched (mux's middleware ran)."""
        clean = clean_path(path)
        if clean != path:
            return Response(301, b"", [("Location", clean)]), False
        handler, params, wrong_method = self.match(method, path)
        if handler is None:
            if wrong_method:
                return Response(405), False
            return text_error("404 page not found", 404), False
        if user_agent.startswith("Mozilla/"):
            return text_error("User agent not allowed", 403), True
        try:
            if method == "GET":
                return await handler(self, params, body), True
            async with self.lock:
                return await handler(self, params, body), True
        except ApiError as exc:
            return api_error(exc), True
        except Exception:  # a bug: answer it, keep serving (Go's net/http recovers a handler panic too)
            log.exception("toxiproxy API: %s %s failed", method, path)
            return api_error(ApiError("internal server error", 500)), True

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """The route's handler and variables; else None, and whether the path matched another method."""
        segments = path.split("/")[1:]
        mismatch = False
        for pattern, methods, handler in self._routes():
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                if methods is None or method in methods:
                    return handler, params, False
                mismatch = True
        return None, {}, mismatch

    def _routes(self) -> list[tuple[list[str], frozenset[str] | None, Handler]]:
        update = frozenset({"POST", "PATCH"})
        get, post, delete = frozenset({"GET"}), frozenset({"POST"}), frozenset({"DELETE"})
        routes: list[tuple[list[str], frozenset[str] | None, Handler]] = [
            (["reset"], post, Api.reset),
            (["proxies"], get, Api.proxy_index),
            (["proxies"], post, Api.proxy_create),
            (["populate"], post, Api.populate),
            (["proxies", "{proxy}"], get, Api.proxy_show),
            (["proxies", "{proxy}"], update, Api.proxy_update),
            (["proxies", "{proxy}"], delete, Api.proxy_delete),
            (["proxies", "{proxy}", "toxics"], get, Api.toxic_index),
            (["proxies", "{proxy}", "toxics"], post, Api.toxic_create),
            (["proxies", "{proxy}", "toxics", "{toxic}"], get, Api.toxic_show),
            (["proxies", "{proxy}", "toxics", "{toxic}"], update, Api.toxic_update),
            (["proxies", "{proxy}", "toxics", "{toxic}"], delete, Api.toxic_delete),
            (["version"], get, Api.version),
        ]
        if self.metrics:
            routes.append((["metrics"], None, Api.metrics_text))
        return routes


def clean_path(path: str) -> str:
    """gorilla/mux's `cleanPath`: Go's `path.Clean`, keeping a trailing slash."""
    if path == "":
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
