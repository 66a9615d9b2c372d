"""Schemathesis against the integration service's own OpenAPI schema: no 5xx, no schema violation.

The service is wired as `ehrlab service` wires it (`support.service`, a Medplum simulator behind it) and
stays up for the whole run on one long-lived virtual-time loop: every generated case is one coroutine
run on that loop (`openapi_fuzz.fuzz_transport`), over the app's ASGI transport. Each request carries the
credentials its path needs: the API key and an organisation for ingress, the operator token elsewhere, the
cron secret everywhere (a header the schema declares is overridden, so cases get past authentication).
The ingress and admin writes carry the bodies the schema declares (`integrations.service.openapi_doc`),
so they reach their handlers instead of being refused unread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import looptime

from harness.service_cmd import DEMO_ORG
from tests.integrations.service.support import API_KEY, CRON, OPERATOR, Svc, service
from tests.openapi_fuzz import NoChaos, fuzz_transport

MAX_EXAMPLES = 10  # ~280 requests in ~3 s
TOKEN = "pt_fuzz0001"


def headers_for(path: str) -> Mapping[str, str]:
    key = API_KEY if path.startswith("/fhir/inbound") else OPERATOR
    return {"Authorization": f"Bearer {key}", "X-Org-ID": DEMO_ORG, "X-Cron-Secret": CRON}


def test_service_openapi_schema_finds_no_server_errors_or_violations(tmp_path: Path) -> None:
    loop = looptime.new_event_loop(start=0.0, noop_cycles=0, idle_timeout=1.0)
    context: AbstractAsyncContextManager[Svc] = service(tmp_path, start_worker=False)

    def run(main: Callable[[], Awaitable[Any]]) -> Any:
        async def wrapper() -> Any:
            return await main()

        return loop.run_until_complete(wrapper())

    async def enter() -> Svc:
        svc = await context.__aenter__()
        svc.patient(TOKEN)  # in the loop: the store stamps it with the virtual clock
        return svc

    try:
        svc = run(enter)
        try:
            result = fuzz_transport(httpx.ASGITransport(app=svc.wired.app), NoChaos(), headers_for,
                                    max_examples=MAX_EXAMPLES, run=run)
        finally:
            run(lambda: context.__aexit__(None, None, None))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert result.operations >= 25, result.operations  # health, flags, queue, metrics, sync, ingress, export
    assert result.writes > 50, result.summary()
    assert not result.failures, result.failures[:5]  # no 5xx, and every answer as the document declares it
    assert result.write_share > 0.9, result.summary()  # writes carry declared bodies: few refused unread
