"""The `/metadata` CapabilityStatement, built from what this simulator actually supports.

Interactions, search parameters and operations follow the personality's flags and the search module's
parameter table, so the statement cannot promise what the server does not do (a read-only vendor lists
read and search only; a vendor without `$export` lists no export operation). When the personality has a
SMART configuration, `rest.security` carries the SMART-on-FHIR service coding and the OAuth URIs
extension (token and authorize endpoints), as SMART App Launch 1.0 asks.
"""

from __future__ import annotations

from typing import Any

from simulators.fhir.personality import FhirPersonality
from simulators.fhir.search import search_params

JsonObject = dict[str, Any]
_SEARCH_TYPE = {"token": "token", "reference": "reference", "date": "date", "string": "string"}
_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(personality: FhirPersonality, *, base: str, date: str) -> JsonObject:
    p = personality
    interactions = ["read", "vread", "search-type"] if p.supports_history else ["read", "search-type"]
    if not p.read_only:
        interactions += ["create", "update", "delete"]
        if p.supports_patch:
            interactions.append("patch")
    if p.supports_history:
        interactions.append("history-instance")
        interactions.append("history-type")
    resources: list[JsonObject] = []
    for resource_type in sorted(p.resource_types):
        entry: JsonObject = {
            "type": resource_type,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned-update" if not p.read_only else "versioned",
            "readHistory": p.supports_history,
            "updateCreate": not p.read_only,
            "conditionalCreate": p.supports_conditional_create and not p.read_only,
            "conditionalUpdate": p.supports_conditional_update and not p.read_only,
            "conditionalDelete": "single" if not p.read_only else "not-supported",
            "searchParam": [{"name": name, "type": _SEARCH_TYPE[param.kind]}
                            for name, param in sorted(search_params(resource_type).items())],
        }
        operations = []
        if resource_type == "Patient" and p.supports_everything:
            operations.append({"name": "everything", "definition":
                               "http://hl7.org/fhir/OperationDefinition/Patient-everything"})
        if resource_type in ("Patient", "Group") and p.supports_export:
            operations.append({"name": "export", "definition":
                               f"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{resource_type.lower()}-export"})
        if operations:
            entry["operation"] = operations
        resources.append(entry)
    rest: JsonObject = {"mode": "server", "resource": resources}
    system = [{"code": "transaction"}, {"code": "batch"}] if p.supports_batch and not p.read_only else []
    if p.supports_history:
        system.append({"code": "history-system"})
    if system:
        rest["interaction"] = system
    if p.supports_export:
        rest["operation"] = [{"name": "export",
                              "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]
    smart = p.smart_configuration
    if smart:
        uris = [{"url": name, "valueUri": smart[key]} for name, key in
                (("token", "token_endpoint"), ("authorize", "authorization_endpoint")) if key in smart]
        rest["security"] = {
            "extension": [{"url": _OAUTH_URIS, "extension": uris}] if uris else [],
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     "code": "SMART-on-FHIR"}]}],
        }
        if not uris:
            del rest["security"]["extension"]
    statement: JsonObject = {
        "resourceType": "CapabilityStatement", "status": "active", "date": date, "kind": "instance",
        "software": {"name": p.software_name, "version": p.software_version},
        "implementation": {"description": f"{p.software_name} (ehrlab simulator)", "url": base},
        "fhirVersion": "4.0.1", "format": ["json"],
    }
    if p.supports_patch and not p.read_only:
        statement["patchFormat"] = ["application/json-patch+json"]
    statement["rest"] = [rest]
    return statement
