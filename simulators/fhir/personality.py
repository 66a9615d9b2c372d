"""A vendor's FHIR quirks, as one frozen value the core reads (`FhirPersonality`).

Each field is a behaviour that differs between real servers (reference/vendors.md): the core asks the
personality instead of hard-coding one vendor. Defaults are those of a plain, spec-following R4 server
(HAPI-like): integer versions from 1, 412 on a stale If-Match, 410 on reading a deleted resource.

Contract note (issue 3's shared contracts): `software_name`/`software_version` are the two
CapabilityStatement fields the contract calls "software_name/version". Fields beyond the contract
(`first_version`, `paging`, `count_over_max`, `max_body_bytes`, `resource_types`, the export timings,
...) all have defaults, so a vendor sets only what it needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from integrations.clock import Clock
from simulators.fhir.outcome import FHIR_JSON, operation_outcome
from simulators.fhir.store import ResourceStore, integer_versions, uuid_ids, uuid_versions

JsonObject = dict[str, Any]
#: (HTTP status, FHIR issue-type code, human text) -> the vendor's OperationOutcome JSON.
OutcomeFactory = Callable[[int, str, str], JsonObject]



@dataclass(frozen=True, slots=True)
class SearchSummary:
    """What one search page found, for a personality's `search_outcome` (e.g. Epic's warning codes)."""

    resource_type: str
    ignored: tuple[str, ...]  # unknown parameters the search went ahead without
    total: int
    offset: int  # of this page: 0 on the first


#: SearchSummary -> an OperationOutcome for the searchset (an entry with `search.mode` outcome), or None.
SearchOutcomeFactory = Callable[[SearchSummary], JsonObject | None]

#: 1 MiB: the default request body limit (413 above it).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: Resource types a simulator serves unless its personality narrows them; others answer 404.
DEFAULT_RESOURCE_TYPES: tuple[str, ...] = (
    "AllergyIntolerance", "AuditEvent", "Condition", "DiagnosticReport", "DocumentReference", "Encounter",
    "Group", "Immunization", "Location", "Medication", "MedicationRequest", "Observation", "Organization",
    "Patient", "Practitioner", "Procedure", "Provenance",
)


def default_outcome(status: int, code: str, text: str) -> JsonObject:
    """The plain FHIR shape: one issue with `code` and `details.text`, no id."""
    return operation_outcome(code, text, severity="error" if status >= 400 else "information")


@dataclass(frozen=True, slots=True, kw_only=True)
class FhirPersonality:
    """How one vendor's FHIR server behaves where servers legitimately differ."""

    name: str
    # -- versions and writes
    version_ids: Literal["uuid", "integer"] = "integer"
    first_version: int = 1  # integer versions only: Cerner starts at 0 (vendors.md §2)
    stale_version_status: Literal[409, 412] = 412
    deleted_read_status: Literal[404, 410] = 410
    put_create_status: Literal[200, 201] = 201
    invalid_resource_status: Literal[400, 422] = 400
    location_with_version: bool = True  # Location: .../Type/id/_history/vid (Medplum: .../Type/id)
    read_only: bool = False  # every write answers `read_only_status`
    read_only_status: int = 405
    supports_patch: bool = True
    supports_conditional_create: bool = True
    supports_conditional_update: bool = True
    # -- search and paging
    unknown_search_param: Literal["ignore", "error"] = "ignore"
    default_count: int = 20
    max_count: int = 1000
    count_over_max: Literal["clamp", "error"] = "clamp"
    paging: Literal["offset", "cursor"] = "offset"  # cursor: opaque `_page` tokens that expire
    cursor_ttl_s: float = 600.0
    search_outcome: SearchOutcomeFactory | None = None  # warnings a searchset carries (Epic: 4101, 4122, 4127)
    # -- optional capabilities
    supports_history: bool = True
    supports_everything: bool = True
    supports_export: bool = True
    supports_batch: bool = True
    export_duration_s: float = 10.0  # kick-off to complete, on the injected clock
    export_retry_after_s: int = 5  # Retry-After on a 202 status poll (Cerner: 600, vendors.md §2)
    max_exports_per_client: int | None = None  # Cerner: 1 ("already an export job in-progress", 429)
    # -- identity, transport and errors
    software_name: str = "ehrlab FHIR"
    software_version: str = "0.1.0"
    # Served at `.well-known/smart-configuration`; in its strings `{server}` becomes the request's
    # scheme://host[:port] and `{base}` the FHIR base URL, so the URLs work through any proxy.
    smart_configuration: JsonObject | None = None
    media_type: str = FHIR_JSON
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    resource_types: tuple[str, ...] = DEFAULT_RESOURCE_TYPES
    outcome: OutcomeFactory = default_outcome

    def __post_init__(self) -> None:
        if not 0 < self.default_count <= self.max_count:
            raise ValueError("need 0 < default_count <= max_count")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")

    def error(self, status: int, code: str, text: str) -> JsonObject:
        return self.outcome(status, code, text)


def store_for(personality: FhirPersonality, clock: Clock, rng: random.Random) -> ResourceStore:
    """A store whose ids are UUIDs from `rng` and whose version ids follow `personality`."""
    versions = uuid_versions(rng) if personality.version_ids == "uuid" else integer_versions(personality.first_version)
    return ResourceStore(clock, new_id=uuid_ids(rng), new_version=versions)
