"""The request journal's `retry_after_s` and `fields`: what a vendor asked a client to wait, and which
top-level fields a write sent (names only, never a value)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.clock import VIRTUAL_EPOCH, VirtualClock, run_virtual
from simulators.admin.journal import RequestJournal, RequestJournalMiddleware, field_names, retry_after_seconds


async def _echo(request: Request) -> Response:
    await request.body()
    wait = request.query_params.get("wait")
    return JSONResponse({}, status_code=429 if wait else 201, headers={"Retry-After": wait} if wait else None)


def test_writes_record_field_names_and_responses_their_retry_after() -> None:
    clock = VirtualClock()
    journal = RequestJournal()
    app = RequestJournalMiddleware(Starlette(routes=[Route("/r", _echo, methods=["GET", "POST", "PUT"])]),
                                   journal, clock)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            await client.post("/r", json={"resourceType": "Patient", "name": [{"family": "Doe"}], "active": True})
            await client.put("/r?wait=30", json=["not", "an", "object"])
            await client.post("/r", content=b"grant_type=client_credentials&client_secret=s3cret")
            await client.get("/r?wait=5")

    run_virtual(main)
    entries = [e.to_json() for e in journal]
    assert [(e["method"], e["status"], e["fields"], e["retry_after_s"]) for e in entries] == [
        ("POST", 201, ["active", "name", "resourceType"], None), ("PUT", 429, [], 30.0), ("POST", 201, [], None),
        ("GET", 429, [], 5.0)]
    for secret in ("Doe", "s3cret", "client_credentials", "Patient\""):
        assert secret not in str(entries)


def test_retry_after_as_a_delta_or_an_http_date() -> None:
    now = VIRTUAL_EPOCH
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert field_names(b'{"b": 1, "a": {"x": 2}}') == ("a", "b")
    assert field_names(b"\xff") == ()
    assert field_names(b"[1]") == ()
