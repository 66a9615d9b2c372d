"""The answers of ingress (runbook 002 §6.1 `/fhir/inbound/*`), re-exported by `integrations.sync.models`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IngressResult:
    """A resource ingested: its type and the local (Holi) record id."""

    resource_type: str
    id: str

    def to_json(self) -> dict[str, object]:
        return {"success": True, "resourceType": self.resource_type, "id": self.id}


@dataclass(frozen=True, slots=True)
class BatchItem:
    success: bool
    resource_type: str | None
    id: str | None = None
    error: str | None = None  # the error's class name
    detail: str | None = None  # its PHI-free detail

    def to_json(self) -> dict[str, object]:
        item: dict[str, object] = {"resourceType": self.resource_type, "id": self.id, "success": self.success}
        if self.error is not None:
            item["error"] = self.error
            item["detail"] = self.detail
        return item


@dataclass(frozen=True, slots=True)
class BatchResult:
    total: int
    succeeded: int
    failed: int
    results: tuple[BatchItem, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {"success": self.failed == 0, "total": self.total, "succeeded": self.succeeded, "failed": self.failed,
                "results": [r.to_json() for r in self.results]}
