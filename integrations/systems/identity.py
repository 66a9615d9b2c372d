"""Finding the same patient on several systems: by a shared business identifier, never by a server id.

Ids are per server (Cerner: "No ids … intended to be used outside of the context of their complete
URL", reference/vendors.md §2), so another system's copy of a patient is found with
`Patient?identifier=<system>|<value>` (FHIR token search; `|`, `,`, `$` and `\\` in either part are
escaped as FHIR's search syntax requires). The answer is filtered again on the client: only Patients
that really carry that identifier count. A server that ignores a search parameter it does not know
(Epic answers 4122 as a warning and searches without it, vendors.md §1) would otherwise hand back
every patient, and the first one would be the wrong person.

An identifier value (an MRN, an enterprise id) is PHI: `Identifier`'s repr hides it, and nothing here
logs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.fhir import FhirResource
from integrations.systems.clients import FhirClient


@dataclass(frozen=True, slots=True)
class Identifier:
    """A patient identifier: its namespace (`system`, a URI) and `value`."""

    system: str
    value: str

    def __post_init__(self) -> None:
        if not self.system.strip() or not self.value.strip():
            raise ValueError("an identifier needs a system and a value")

    def __repr__(self) -> str:
        return f"Identifier(system={self.system!r}, value='***')"

    def search_token(self) -> str:
        """`system|value` for a token search, escaped."""
        return f"{_escape(self.system)}|{_escape(self.value)}"

    def carried_by(self, resource: FhirResource) -> bool:
        """Whether `resource.identifier` holds exactly this identifier."""
        identifiers = resource.body.get("identifier")
        if not isinstance(identifiers, list):
            return False
        return any(isinstance(i, dict) and i.get("system") == self.system and i.get("value") == self.value
                   for i in identifiers)


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")


async def find_patients(client: FhirClient, identifier: Identifier) -> tuple[FhirResource, ...]:
    """The Patients on one system that carry `identifier` (first page of the search; errors propagate)."""
    page = await client.search("Patient", {"identifier": identifier.search_token()})
    return tuple(r for r in page.resources if r.resource_type == "Patient" and identifier.carried_by(r))
