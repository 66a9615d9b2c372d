"""Read failover: a Patient read the primary system cannot serve is served by another configured system
that holds the same patient (runbook `004_bc3882054056792c.txt`, "Connection Management": "Automatic
failover"; "Error Handling": on a timeout "Use alternate system or cached data").

```python
reader = FailoverReader(registry, listener=listener)
result = await reader.read_patient("epic_prod", "e123", Identifier("urn:oid:1.2.3", "EMPI-1"))
result.system_id, result.failed_over, result.resource
```

1. The primary is asked for `Patient/<id>`, unless its breaker refuses calls (OPEN): then nothing is
   sent and the reason is `CircuitOpen`.
2. The primary is passed over only when it is *unavailable*: its breaker refused (`CircuitOpen`), or
   the call failed with an error a retry could fix (`ConnectorError.retryable`: 5xx, timeout, dropped
   connection, 429, token endpoint down), after the connector's own retries. An answer (404, 403,
   400, 409 ...) is the primary's word on the patient and is re-raised unchanged: failing over on a
   404 could serve a record the primary has deliberately deleted or merged.
3. The other systems (`fallbacks`, default: every other configured system in priority order) are
   tried in turn: skipped while their breaker refuses calls, else searched by identifier
   (`identity.find_patients`). Exactly one match serves the read; none (`not_found`), several
   (`ambiguous`: never guess between people) or an error move on to the next.
4. The result names the system it came from. `ReadFailedOver` is emitted when a fallback served,
   `ReadFailoverExhausted` (and `FailoverExhausted` raised, chained to the primary's error) when none
   did. Events and logs carry system ids and error class names only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from integrations.events import EventListener, ReadFailedOver, ReadFailoverExhausted, ignore_event
from integrations.fhir import CircuitOpen, ConnectorError, FhirResource
from integrations.systems.config import Vendor
from integrations.systems.errors import Attempt, FailoverExhausted
from integrations.systems.identity import Identifier, find_patients
from integrations.systems.registry import RegisteredSystem, SystemRegistry, refuses_calls

logger = logging.getLogger(__name__)

NOT_FOUND = "not_found"
AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class SourcedResource:
    """A resource and the system that served it; `passed_over` lists the systems that did not, and why."""

    resource: FhirResource
    system_id: str
    vendor: Vendor
    passed_over: tuple[Attempt, ...]

    @property
    def failed_over(self) -> bool:
        """Served by another system than the primary."""
        return bool(self.passed_over)


def unavailable(error: ConnectorError) -> bool:
    """Whether `error` means the system could not answer (failover may help), not that it answered no."""
    return isinstance(error, CircuitOpen) or error.retryable


class FailoverReader:
    """Patient reads with failover across a `SystemRegistry`; see the module docstring."""

    def __init__(self, registry: SystemRegistry, *, listener: EventListener = ignore_event) -> None:
        self._registry = registry
        self._listener = listener

    @property
    def registry(self) -> SystemRegistry:
        return self._registry

    async def read_patient(self, primary: str, patient_id: str, identifier: Identifier, *,
                           fallbacks: Sequence[str] | None = None) -> SourcedResource:
        """`Patient/<patient_id>` from `primary`, or the patient carrying `identifier` from a fallback."""
        first = self._registry.get(primary)
        others = (self._registry.others(primary) if fallbacks is None
                  else tuple(self._registry.get(s) for s in fallbacks if s != primary))
        primary_error: ConnectorError | None = None
        if refuses_calls(first.breaker.state):
            reason = CircuitOpen.__name__
        else:
            try:
                resource = await first.client.read("Patient", patient_id)
            except ConnectorError as error:
                if not unavailable(error):
                    raise
                primary_error, reason = error, type(error).__name__
            else:
                return SourcedResource(resource=resource, system_id=first.id, vendor=first.vendor, passed_over=())
        attempts = [Attempt(system_id=first.id, reason=reason)]
        for system in others:
            found = await self._from_fallback(system, identifier)
            if isinstance(found, FhirResource):
                logger.info("Patient read failed over from %s (%s) to %s after %d system(s)", first.id, reason,
                            system.id, len(attempts))
                self._listener(ReadFailedOver(resource_type="Patient", primary=first.id, served_by=system.id,
                                              reason=reason, systems_tried=len(attempts)))
                return SourcedResource(resource=found, system_id=system.id, vendor=system.vendor,
                                       passed_over=tuple(attempts))
            attempts.append(found)
        logger.warning("Patient read failed on every system: %s",
                       ", ".join(f"{a.system_id} ({a.reason})" for a in attempts))
        self._listener(ReadFailoverExhausted(resource_type="Patient", primary=first.id,
                                             systems=tuple(a.system_id for a in attempts),
                                             reasons=tuple(a.reason for a in attempts)))
        raise FailoverExhausted("Patient", tuple(attempts)) from primary_error

    async def _from_fallback(self, system: RegisteredSystem, identifier: Identifier) -> FhirResource | Attempt:
        if refuses_calls(system.breaker.state):
            return Attempt(system_id=system.id, reason=CircuitOpen.__name__)
        try:
            matches = await find_patients(system.client, identifier)
        except ConnectorError as error:
            return Attempt(system_id=system.id, reason=type(error).__name__)
        if len(matches) == 1:
            return matches[0]
        return Attempt(system_id=system.id, reason=NOT_FOUND if not matches else AMBIGUOUS)
