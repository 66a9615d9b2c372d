"""The FHIR R4 core shared by the vendor simulators.

- `store`: the versioned resource store (`ResourceStore`), with history, deletes, conditional writes, drift;
- `personality`: a vendor's FHIR quirks (`FhirPersonality`) and `store_for(personality, clock, rng)`;
- `api`: the REST API a vendor mounts under its base path (`fhir_router`; `fhir_asgi` serves it fast);
- `interaction`: what the vendor plugs in (`Authorizer`, `InteractionHook`, `Interaction`);
- `synthetic`: seeded synthetic patients and their records (`seed_population`);
- `outcome`, `validation`, `http`: OperationOutcomes, R4B validation, request/response edges.
"""

from simulators.errors import InvalidResource, ResourceNotFound, StoreError, VersionConflict
from simulators.fhir.api import fhir_asgi, fhir_router
from simulators.fhir.interaction import SMART_LETTERS, Authorizer, Interaction, InteractionHook, allow_all
from simulators.fhir.outcome import (
    FHIR_JSON,
    OutcomeError,
    OutcomeRoute,
    fhir_response,
    install_outcome_handlers,
    operation_outcome,
)
from simulators.fhir.personality import DEFAULT_RESOURCE_TYPES, FhirPersonality, default_outcome, store_for
from simulators.fhir.store import (
    IdFactory,
    MultipleMatches,
    Resource,
    ResourceDeleted,
    ResourceStore,
    Version,
    VersionIdFactory,
    Where,
    format_instant,
    integer_versions,
    rng_uuid,
    uuid_ids,
    uuid_versions,
)
from simulators.fhir.synthetic import Population, SeededPatient, seed_population
from simulators.fhir.validation import validate_resource

__all__ = [
    "DEFAULT_RESOURCE_TYPES",
    "FHIR_JSON",
    "SMART_LETTERS",
    "Authorizer",
    "FhirPersonality",
    "IdFactory",
    "Interaction",
    "InteractionHook",
    "InvalidResource",
    "MultipleMatches",
    "OutcomeError",
    "OutcomeRoute",
    "Population",
    "Resource",
    "ResourceDeleted",
    "ResourceNotFound",
    "ResourceStore",
    "SeededPatient",
    "StoreError",
    "Version",
    "VersionConflict",
    "VersionIdFactory",
    "Where",
    "allow_all",
    "default_outcome",
    "fhir_asgi",
    "fhir_response",
    "fhir_router",
    "format_instant",
    "install_outcome_handlers",
    "integer_versions",
    "operation_outcome",
    "rng_uuid",
    "seed_population",
    "store_for",
    "uuid_ids",
    "uuid_versions",
    "validate_resource",
]
