"""The fault driver against a simulator admin API that drops a kept-alive connection as it is reused: a fault's
stop (DELETE by id, idempotent) is sent once more; a start is not (it could have created a second fault)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from harness.clock import VirtualClock, run_virtual
from harness.errors import LabError
from harness.faults.catalogue import OutageFault
from harness.faults.driver import FaultDriver
from harness.journal import FaultStopped, Journal


@dataclass
class _Vendor:
    admin: httpx.AsyncClient


class _Lab:
    def __init__(self, admin: httpx.AsyncClient) -> None:
        self._vendor = _Vendor(admin)

    def vendor(self, name: str) -> _Vendor:
        return self._vendor


def _run(drops: dict[str, int]) -> tuple[list[str], Journal | None, Exception | None]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if drops.get(request.method, 0) > 0:
            drops[request.method] -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if request.method == "PUT":
            return httpx.Response(200, json={"id": "fault-1"})
        return httpx.Response(200, json={})

    async def main() -> tuple[Journal, Exception | None]:
        clock = VirtualClock()
        journal = Journal(clock)
        admin = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://medplum.ehrlab.test")
        driver = FaultDriver(_Lab(admin), journal)  # type: ignore[arg-type]
        fault = OutageFault.model_validate({"kind": "outage", "target": "medplum", "at": 0})
        error: Exception | None = None
        try:
            await driver.start("f1", fault)
            await driver.stop("f1")
        except LabError as exc:
            error = exc
        await admin.aclose()
        return journal, error

    journal, error = run_virtual(main)
    return seen, journal, error


def test_a_dropped_stop_is_sent_once_more() -> None:
    seen, journal, error = _run({"DELETE": 1})
    assert error is None
    assert seen == ["PUT", "DELETE", "DELETE"]
    assert journal is not None
    assert len(journal.of(FaultStopped)) == 1


def test_a_stop_dropped_twice_is_a_lab_error() -> None:
    seen, _, error = _run({"DELETE": 2})
    assert seen == ["PUT", "DELETE", "DELETE"]
    assert isinstance(error, LabError)


def test_a_dropped_start_is_not_resent() -> None:
    seen, _, error = _run({"PUT": 1})
    assert seen == ["PUT"]
    assert isinstance(error, LabError)
