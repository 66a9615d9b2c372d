"""The request journal: every request a simulator served, who made it, how it was answered.

`RequestJournalMiddleware` is the outermost layer of a simulator (outside the chaos middleware, so
it sees outages and dropped connections too). Per HTTP request outside `/admin` it records one
`JournalEntry`: sequence number, wall time (`clock.now()`), method, path (the URL path only: never
the query string, a header, a token or a body), the client, status (None when the connection was
dropped), latency on the clock's monotonic time (until the last body byte was handed over, or the
connection was dropped), the faults the chaos layer applied (`scope["state"]["ehrlab_faults"]`), the
`Retry-After` the response asked for (in seconds, a delta or an HTTP date) and, for a write (POST, PUT,
PATCH) whose body is a JSON object, the names of its top-level fields, sorted (names only, never a value).

The client is what the app set in `request.state.ehrlab_client` once it authenticated the call;
failing that (a call refused before authentication, an outage that never reached the app), what
`client_resolver(scope)` says (e.g. the client of the bearer token, even an expired one).

The journal keeps the newest `capacity` entries (default 10,000) and counts what it dropped.
`query` filters by sequence cursor (`after`), time (`since`), path prefix, method, client, status
(`503` or a class like `5xx`) and "a fault was applied", oldest first, at most `limit`.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.clock import Clock
from simulators.admin.auth import ADMIN_SECURITY, admin_route_class
from simulators.chaos import STATE_FAULTS, ClientResolver, request_state
from simulators.errors import ConnectionDropped
from simulators.fhir.outcome import OutcomeError, operation_outcome
from simulators.fhir.store import format_instant

#: Where a vendor app puts the authenticated client id (`request.state.ehrlab_client = client_id`).
STATE_CLIENT = "ehrlab_client"
DEFAULT_CAPACITY = 10_000
MAX_QUERY_LIMIT = 10_000
_STATUS = re.compile(r"^(?:[1-5][0-9]{2}|[1-5]xx)$")
_WRITES = frozenset({"POST", "PUT", "PATCH"})
MAX_FIELDS_BODY = 1 << 20  # a write body larger than this is not read for its field names


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request as the simulator saw it. Holds no query string, header, token or body."""

    seq: int
    at: datetime
    method: str
    path: str
    client: str | None
    status: int | None  # None: the connection was dropped before a response
    latency_s: float
    faults: tuple[str, ...] = ()  # kinds applied, in order
    fault_ids: tuple[str, ...] = ()
    outcome: str = "response"  # response | dropped | truncated | error
    retry_after_s: float | None = None  # the response's Retry-After, in seconds
    fields: tuple[str, ...] = ()  # a write's top-level JSON field names, sorted (never a value)

    def to_json(self) -> dict[str, object]:
        return {"seq": self.seq, "at": format_instant(self.at), "method": self.method, "path": self.path,
                "client": self.client, "status": self.status, "latency_ms": round(self.latency_s * 1000.0, 3),
                "faults": list(self.faults), "fault_ids": list(self.fault_ids), "outcome": self.outcome,
                "retry_after_s": self.retry_after_s, "fields": list(self.fields)}


#: A journal entry as kept: (seq, at, method, path, client, status, latency_s, faults applied, outcome,
#: retry_after_s, fields).
_Row = tuple[int, datetime, str, str, "str | None", "int | None", float, tuple[tuple[str, str], ...], str,
             "float | None", tuple[str, ...]]


def _entry(row: _Row) -> JournalEntry:
    seq, at, method, path, client, status, latency_s, applied, outcome, retry_after_s, fields = row
    return JournalEntry(seq=seq, at=at, method=method, path=path, client=client, status=status, latency_s=latency_s,
                        faults=tuple(kind for _, kind in applied), fault_ids=tuple(fault_id for fault_id, _ in applied),
                        outcome=outcome, retry_after_s=retry_after_s, fields=fields)


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """A Retry-After header in seconds: delta-seconds, or an HTTP date (from `now`, never negative)."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def field_names(body: bytes) -> tuple[str, ...]:
    """The sorted top-level field names of a JSON object body; () for anything else (never a value)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    return tuple(sorted(str(key) for key in data)) if isinstance(data, dict) else ()


class RequestJournal:
    """The newest `capacity` journal entries, oldest first.

    Kept as flat tuples, made into `JournalEntry`s when read: the middleware records every request, and
    building a frozen dataclass per request cost more than the rest of the journal's work."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._entries: deque[_Row] = deque(maxlen=capacity)
        self._next_seq = 1
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter([_entry(row) for row in self._entries])

    def __repr__(self) -> str:
        return f"RequestJournal(entries={len(self._entries)}, dropped={self.dropped})"

    def record(self, *, at: datetime, method: str, path: str, client: str | None, status: int | None,
               latency_s: float, faults: Iterable[tuple[str, str]] = (), outcome: str = "response",
               retry_after_s: float | None = None, fields: Iterable[str] = ()) -> JournalEntry:
        return _entry(self._add(at, method, path, client, status, latency_s, tuple(faults), outcome, retry_after_s,
                                tuple(sorted(fields))))

    def _add(self, at: datetime, method: str, path: str, client: str | None, status: int | None, latency_s: float,
             faults: tuple[tuple[str, str], ...], outcome: str, retry_after_s: float | None = None,
             fields: tuple[str, ...] = ()) -> _Row:
        row: _Row = (self._next_seq, at, method, path, client, status, latency_s, faults, outcome, retry_after_s,
                     fields)
        self._next_seq += 1
        if len(self._entries) == self._entries.maxlen:
            self.dropped += 1
        self._entries.append(row)
        return row

    def query(self, *, after: int | None = None, since: datetime | None = None, path: str | None = None,
              method: str | None = None, client: str | None = None, status: str | int | None = None,
              faulted: bool | None = None, limit: int = 100) -> list[JournalEntry]:
        """Matching entries, oldest first, at most `limit`; `path` is a prefix on whole segments."""
        prefix = None if path is None else path.rstrip("/")
        status_text = None if status is None else str(status)
        found: list[JournalEntry] = []
        for row in self._entries:
            seq, at, row_method, row_path, row_client, row_status, _, applied, _, _, _ = row
            if after is not None and seq <= after:
                continue
            if since is not None and at < since:
                continue
            if prefix and not (row_path == prefix or row_path.startswith(prefix + "/")):
                continue
            if method is not None and row_method != method.upper():
                continue
            if client is not None and row_client != client:
                continue
            if status_text is not None and not _status_matches(row_status, status_text):
                continue
            if faulted is not None and bool(applied) != faulted:
                continue
            found.append(_entry(row))
            if len(found) >= limit:
                break
        return found

    def clear(self) -> int:
        """Forget every entry (sequence numbers keep counting up); returns how many were dropped."""
        cleared = len(self._entries)
        self._entries.clear()
        self.dropped = 0
        return cleared


def _status_matches(status: int | None, wanted: str) -> bool:
    if status is None:
        return False
    if wanted.endswith("xx"):
        return str(status)[0] == wanted[0]
    return str(status) == wanted


class RequestJournalMiddleware:
    """Records every HTTP request outside `exempt_prefixes` in `journal`."""

    def __init__(self, app: ASGIApp, journal: RequestJournal, clock: Clock, *,
                 client_resolver: ClientResolver | None = None, exempt_prefixes: Iterable[str] = ("/admin",)) -> None:
        self.app = app
        self.journal = journal
        self.clock = clock
        self.client_resolver = client_resolver
        self.exempt_prefixes = tuple(prefix.rstrip("/") for prefix in exempt_prefixes)
        self._exempt_paths = frozenset(self.exempt_prefixes)
        self._exempt_children = tuple(prefix + "/" for prefix in self.exempt_prefixes)

    def is_exempt(self, path: str) -> bool:
        return path in self._exempt_paths or path.startswith(self._exempt_children)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        at = self.clock.now()
        started = self.clock.monotonic()
        state = request_state(scope)
        status: int | None = None
        ended: float | None = None
        retry_after: float | None = None
        method = str(scope["method"])
        body: bytearray | None = bytearray() if method in _WRITES else None

        async def journaled_send(message: Message) -> None:
            nonlocal status, ended, retry_after
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if bytes(name).lower() == b"retry-after":
                        retry_after = retry_after_seconds(bytes(value).decode("latin-1"), self.clock.now())
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = self.clock.monotonic()

        async def journaled_receive() -> Message:
            nonlocal body
            message = await receive()
            if body is not None and message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if len(body) > MAX_FIELDS_BODY:
                    body = None
            return message

        outcome = "response"
        try:
            await self.app(scope, receive if body is None else journaled_receive, journaled_send)
        except ConnectionDropped:
            outcome = "truncated" if status is not None else "dropped"
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            client = state.get(STATE_CLIENT)
            if not isinstance(client, str) and self.client_resolver is not None:
                client = self.client_resolver(scope)
            faults = state.get(STATE_FAULTS)
            self.journal._add(
                at, method, str(scope["path"]), client if isinstance(client, str) else None,
                status if outcome != "dropped" else None,
                (ended if ended is not None else self.clock.monotonic()) - started,
                tuple(faults) if isinstance(faults, list) and faults else (), outcome, retry_after,
                field_names(bytes(body)) if body else ())


def journal_router(journal: RequestJournal, admin_token: str) -> APIRouter:
    """`GET /admin/requests` (query) and `DELETE /admin/requests` (clear), behind the admin token."""
    router = APIRouter(prefix="/admin/requests", route_class=admin_route_class(admin_token),
                       dependencies=[ADMIN_SECURITY], tags=["admin: request journal"])

    @router.get("", summary="Query the request journal (oldest first)")
    async def query_journal(
        after: Annotated[int | None, Query(ge=0, description="only entries with a greater seq")] = None,
        since: Annotated[datetime | None, Query(description="only entries at or after this instant")] = None,
        path: Annotated[str | None, Query(pattern=r"^/[^\s?#]{0,512}$", description="path prefix")] = None,
        method: Annotated[str | None, Query(pattern=r"^[A-Za-z]{1,16}$")] = None,
        client: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        status: Annotated[str | None, Query(pattern=_STATUS.pattern, description="e.g. 503 or 5xx")] = None,
        faulted: Annotated[bool | None, Query(description="only requests a fault did (or did not) hit")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_QUERY_LIMIT)] = 100,
    ) -> JSONResponse:
        if since is not None and since.tzinfo is None:
            raise OutcomeError(400, operation_outcome("invalid", "since: must carry a UTC offset",
                                                      expression=["since"]))
        entries = journal.query(after=after, since=since, path=path, method=method, client=client, status=status,
                                faulted=faulted, limit=limit)
        return JSONResponse({"entries": [entry.to_json() for entry in entries], "count": len(entries),
                             "total": len(journal), "dropped": journal.dropped,
                             "last_seq": entries[-1].seq if entries else after})

    @router.delete("", summary="Clear the request journal")
    async def clear_journal() -> JSONResponse:
        return JSONResponse({"cleared": journal.clear()})

    return router
