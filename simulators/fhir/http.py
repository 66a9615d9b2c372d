"""HTTP edges of the FHIR core: request bodies in, resource responses out, base URLs.

- `read_resource_body`: the body of a write. Over `max_body_bytes` is 413 (checked on Content-Length
  first, then while reading, so a lying or absent length cannot make the server buffer more); a
  content type other than JSON / FHIR JSON / JSON Patch is 415; unparsable JSON, NaN/Infinity, deep
  nesting or a non-object is 400. Each answer is the personality's OperationOutcome.
- `fhir_base`: the FHIR base URL of this request, from the request's own scheme, host and port (the
  Host header), so `Location`, `fullUrl` and paging links keep working when the client reaches the
  simulator through a proxy on another port. The mount prefix (`/fhir/R4`, `/r4/{tenant}`) is
  whatever precedes the route's own segments in the request path.
- `resource_response`: `ETag: W/"<versionId>"`, `Last-Modified` and, for 201, `Location`.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from simulators.fhir.json_cache import match_entry
from simulators.fhir.outcome import OutcomeError, dump_json
from simulators.fhir.paging import SEARCH_MATCH
from simulators.fhir.personality import FhirPersonality

JsonObject = dict[str, Any]

JSON_TYPES = frozenset({"application/json", "application/fhir+json", "application/json+fhir"})
JSON_PATCH = "application/json-patch+json"
_IF_MATCH = re.compile(r'"([^"]+)"')
#: FHIR `id` datatype: 1-64 of A-Z a-z 0-9 - .
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: Deepest JSON nesting a body may have (a real resource stays far below; a bomb does not).
MAX_DEPTH = 64


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_if_match(value: str | None) -> str | None:
    """The version in `If-Match`: the text between the first pair of quotes (`W/"3"` and `"3"` mean 3)."""
    if not value:
        return None
    match = _IF_MATCH.search(value)
    return match.group(1) if match else None


def valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: object, limit: int) -> bool:
    """True if `value` nests no deeper than `limit` (iterative: no recursion on hostile input)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


async def read_body(request: Request, personality: FhirPersonality) -> bytes:
    """The raw body, at most `max_body_bytes` (else 413)."""
    limit = personality.max_body_bytes
    too_large = OutcomeError(413, personality.error(413, "too-costly", f"Request body exceeds {limit} bytes"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, personality: FhirPersonality) -> Any:
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise OutcomeError(400, personality.error(400, "invalid", "Content could not be parsed")) from None
    if not _depth(value, MAX_DEPTH):
        raise OutcomeError(400, personality.error(400, "invalid", "Content is nested too deeply"))
    return value


async def read_json_body(request: Request, personality: FhirPersonality, *,
                         allowed: frozenset[str] = JSON_TYPES) -> Any:
    """The parsed JSON body of a write (any JSON value; callers check the shape)."""
    kind = media_type(request)
    if kind not in allowed:
        expected = ", ".join(sorted(allowed))
        raise OutcomeError(415, personality.error(415, "not-supported",
                                                  f"Unsupported content type; expected one of: {expected}"))
    raw = await read_body(request, personality)
    if not raw.strip():
        raise OutcomeError(400, personality.error(400, "invalid", "Request body is empty"))
    return parse_json(raw, personality)


async def read_resource_body(request: Request, personality: FhirPersonality) -> JsonObject:
    value = await read_json_body(request, personality)
    if isinstance(value, list):
        raise OutcomeError(400, personality.error(400, "invalid", "Request body must be a JSON object"))
    if not isinstance(value, dict):  # a bare string or number: what strict JSON body parsers refuse
        raise OutcomeError(400, personality.error(400, "invalid", "Content could not be parsed"))
    return value


def fhir_base(request: Request, route_segments: int) -> str:
    """The FHIR base URL: the request URL without its query and its last `route_segments` segments."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")
    if server is not None and not isinstance(server, tuple):
        server = tuple(server)
    return _base_url(scope.get("scheme", "http"), server, host, scope["path"], route_segments)


@functools.lru_cache(maxsize=1024)
def _base_url(scheme: str, server: tuple[str, int | None] | None, host: bytes | None, path: str, segments: int) -> str:
    """`fhir_base` of a request with these parts: Starlette's `request.url` (Host header, else the server),
    remembered, as a simulator sees the same few hosts and search paths over and over."""
    url = URL(scope={"scheme": scheme, "server": server, "path": path, "query_string": b"",
                     "headers": [] if host is None else [(b"host", host)]})
    base = url.path.rstrip("/")
    if segments:
        base = base.rsplit("/", segments)[0]
    return f"{url.scheme}://{url.netloc}{base}"


@functools.lru_cache(maxsize=4096)
def http_date(instant: str) -> str:
    """A FHIR instant as an HTTP date (`Last-Modified`); remembered, as the same versions are read again."""
    return format_datetime(datetime.fromisoformat(instant), usegmt=True)


def resource_headers(resource: Mapping[str, Any], base: str, status: int, *,
                     location_with_version: bool = True) -> dict[str, str]:
    meta = resource.get("meta") or {}
    headers: dict[str, str] = {}
    if "versionId" in meta:
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if "lastUpdated" in meta:
        headers["Last-Modified"] = http_date(meta["lastUpdated"])
    if status == 201:
        location = f"{base}/{resource['resourceType']}/{resource['id']}"
        if location_with_version and "versionId" in meta:
            location += f"/_history/{meta['versionId']}"
        headers["Location"] = location
    return headers


_encode_string = json.encoder.encode_basestring  # the C encoder's string escaper (ensure_ascii=False)
_ENTRY_TAILS = {mode: dump_json({"search": {"mode": mode}})[1:] for mode in ("match", "include", "outcome")}


def dump_bundle(bundle: Mapping[str, Any], encode: Callable[[Mapping[str, Any]], bytes],
                encode_match: Callable[[str, Mapping[str, Any]], bytes] | None = None) -> bytes:
    """A Bundle as JSON whose entries' resources are encoded by `encode` (the store's cached bytes), and
    searchset match entries by `encode_match(full_url, resource)` (`json_cache.match_entry`) if given.

    Byte for byte what `dump_json(bundle)` gives, when `entry` is the Bundle's last member."""
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or list(bundle)[-1] != "entry":
        return dump_json(bundle)
    head = dump_json({key: value for key, value in bundle.items() if key != "entry"})
    if encode_match is not None:  # a searchset() page: every entry a match
        matches = [encode_match(entry["fullUrl"], entry["resource"]) for entry in entries
                   if type(entry) is dict and len(entry) == 3 and entry.get("search") is SEARCH_MATCH]
        if len(matches) == len(entries):
            return b"".join((head[:-1], b',"entry":[', b",".join(matches), b"]}"))
    parts: list[bytes] = [head[:-1], b',"entry":[']
    for entry in entries:
        if type(entry) is dict and len(entry) == 3 and entry.get("search") is SEARCH_MATCH:  # searchset()'s own
            full_url, resource = entry["fullUrl"], entry["resource"]
            parts += (encode_match(full_url, resource) if encode_match is not None
                      else match_entry(full_url, encode(resource)), b",")
            continue
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None or list(entry)[:2] not in (["fullUrl", "resource"], ["resource"]):
            parts += (dump_json(entry), b",")
            continue
        if "fullUrl" in entry:
            parts += (b'{"fullUrl":', _encode_string(entry["fullUrl"]).encode(), b",")
        else:
            parts.append(b"{")
        parts += (b'"resource":', encode(resource))
        rest = {key: value for key, value in entry.items() if key not in ("fullUrl", "resource")}
        search = rest.get("search") if list(rest) == ["search"] else None
        mode = search.get("mode") if isinstance(search, dict) and list(search) == ["mode"] else None
        tail = _ENTRY_TAILS.get(mode) if isinstance(mode, str) else None
        parts += ((b"," + (tail or dump_json(rest)[1:]) if rest else b"}"), b",")
    parts[-1] = b"]}"  # the last entry's comma
    return b"".join(parts)


class JsonBytesResponse(Response):
    """A `Response` for JSON already encoded: the same raw headers, in the same order, that Starlette's
    `Response(content, status, headers, media_type)` makes, built without its generic header handling."""

    def __init__(self, content: bytes, status_code: int, headers: Mapping[str, str] | None, media_type: str) -> None:
        if status_code < 200 or status_code in (204, 304) or media_type.startswith("text/") or (
                headers and not _PLAIN_HEADERS.issuperset(headers)):
            super().__init__(content, status_code, headers, media_type)  # the rare cases: Starlette's rules
            return
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.body = content
        raw = [(_HEADER_NAMES[name], value.encode("latin-1")) for name, value in headers.items()] if headers else []
        raw.append((b"content-length", str(len(content)).encode()))
        raw.append((b"content-type", _media_type_bytes(media_type)))
        self.raw_headers = raw


#: Header names the core sets on JSON answers (any other name takes Starlette's path).
_HEADER_NAMES = {name: name.lower().encode("latin-1") for name in (
    "ETag", "Last-Modified", "Location", "Content-Location", "Retry-After", "X-Progress", "Expires",
    "WWW-Authenticate", "Allow", "X-Request-Id")}
_PLAIN_HEADERS = frozenset(_HEADER_NAMES)


@functools.lru_cache(maxsize=64)
def _media_type_bytes(media_type: str) -> bytes:
    return media_type.encode("latin-1")


def json_response(personality: FhirPersonality, body: object, status: int = 200,
                  headers: Mapping[str, str] | None = None, *, media_type: str | None = None) -> Response:
    """`body` as JSON (bytes are sent as they are: already encoded)."""
    content = body if isinstance(body, bytes) else dump_json(body)
    return JsonBytesResponse(content, status, headers, media_type or personality.media_type)


def resource_response(personality: FhirPersonality, resource: Mapping[str, Any], base: str,
                      status: int = 200) -> Response:
    headers = resource_headers(resource, base, status, location_with_version=personality.location_with_version)
    return json_response(personality, resource, status, headers)
