"""Validation of incoming resources with the FHIR R4 models of `fhir.resources`.

`fhir.resources` defaults to R5; R4 payloads are validated with its `R4B` package (4.3.0), which
accepts R4 shapes the R5 models reject (reference/vendors.md §8). Only writes are validated: reads
return what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from simulators.errors import InvalidResource


def validate_resource(resource: Mapping[str, Any]) -> None:
    """Raise `InvalidResource` unless `resource` is a valid R4 resource of its `resourceType`."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource("Missing resourceType", ("resourceType",))
    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        raise InvalidResource(f"Unknown resource type: {resource_type}", ("resourceType",)) from None
    try:
        model.model_validate(dict(resource))
    except ValidationError as exc:
        problems: list[str] = []
        expressions: list[str] = []
        for error in exc.errors()[:5]:
            path = ".".join([resource_type, *(str(part) for part in error["loc"])])
            expressions.append(path)
            # `msg` names the rule; `input` (the offending value) is deliberately left out.
            problems.append(f"{path}: {' '.join(error['msg'].split())}")
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise InvalidResource("; ".join(problems) + more, tuple(expressions)) from None
