"""The FHIR R4 core shared by the vendor simulators: store, validation, OperationOutcomes."""

from simulators.errors import InvalidResource, ResourceNotFound, StoreError, VersionConflict
from simulators.fhir.outcome import (
    FHIR_JSON,
    OutcomeError,
    OutcomeRoute,
    fhir_response,
    install_outcome_handlers,
    operation_outcome,
)
from simulators.fhir.store import (
    IdFactory,
    Resource,
    ResourceStore,
    VersionIdFactory,
    format_instant,
    integer_versions,
    rng_uuid,
    uuid_ids,
    uuid_versions,
)
from simulators.fhir.validation import validate_resource

__all__ = [
    "FHIR_JSON",
    "IdFactory",
    "InvalidResource",
    "OutcomeError",
    "OutcomeRoute",
    "Resource",
    "ResourceNotFound",
    "ResourceStore",
    "StoreError",
    "VersionConflict",
    "VersionIdFactory",
    "fhir_response",
    "format_instant",
    "install_outcome_handlers",
    "integer_versions",
    "operation_outcome",
    "rng_uuid",
    "uuid_ids",
    "uuid_versions",
    "validate_resource",
]
