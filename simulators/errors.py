"""The simulators' error tree.

    SimulatorError                 root of everything the simulators raise on purpose
    ├── ConnectionDropped          chaos wants this client's connection closed with no response
    │   └── ResponseTruncated      ... after a response body cut short of its Content-Length
    ├── OutcomeError               answer this request with an OperationOutcome (simulators.fhir.outcome)
    └── StoreError                 a FHIR store operation was refused (simulators.fhir.store)
        ├── ResourceNotFound       no such resource
        ├── VersionConflict        the expected version is not the current one
        └── InvalidResource        the resource does not validate as FHIR R4 (R4B models)

Store errors carry no HTTP status: each vendor personality maps them to its own status and shape
(Medplum answers a version conflict with 412, Cerner with 409).

`ConnectionDropped` is not an HTTP answer, so no app turns it into one. The layer that serves the app
realizes it: `simulators.transport.VirtualTransport` raises `httpx.RemoteProtocolError` in process,
`simulators.server.serve` aborts the client's TCP connection. Raise it only outside the FastAPI app
(the chaos middleware wraps the app): inside, Starlette's ServerErrorMiddleware would first answer 500.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of the simulators' own exceptions."""


class ConnectionDropped(SimulatorError):
    """Drop the client's connection without sending any response (a chaos outage in "drop" mode)."""


class ResponseTruncated(ConnectionDropped):
    """Close the client's connection after a response body cut short of its Content-Length.

    A `ConnectionDropped`, so a serving layer that only knows dropped connections still closes the
    connection (the client then sees the same error class); `received` and `expected` are the body
    bytes sent and declared, for the message httpx gives when a real server does this.
    """

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"response body truncated: sent {received} of {expected} bytes")
        self.received = received
        self.expected = expected


class StoreError(SimulatorError):
    """A FHIR store operation was refused."""


class ResourceNotFound(StoreError):
    """No resource of that type and id."""

    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(f"{resource_type}/{resource_id} not found")
        self.resource_type = resource_type
        self.resource_id = resource_id


class VersionConflict(StoreError):
    """The caller's expected version is not the current one (If-Match mismatch)."""

    def __init__(self, resource_type: str, resource_id: str, expected: str, current: str) -> None:
        super().__init__(f"{resource_type}/{resource_id}: expected version {expected}, current is {current}")
        self.expected = expected
        self.current = current


class InvalidResource(StoreError):
    """The resource does not validate as FHIR R4 (R4B models)."""

    def __init__(self, message: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
