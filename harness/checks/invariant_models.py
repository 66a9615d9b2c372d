"""`check: invariant`: properties every run must keep, checked over its journal (DESIGN.md "checks").

    - check: invariant
      invariant: no_job_lost_or_duplicated     # stall_timeout: 60s, allow_pending: true
    - check: invariant
      invariant: consent_never_bypassed
    - check: invariant
      invariant: no_phi_to_medplum             # require_evidence: true
    - check: invariant
      invariant: no_expired_or_revoked_credential   # vendor: epic, margin: 60s (002 §2.1)
    - check: invariant
      invariant: every_write_audited
    - check: invariant
      invariant: breaker_transitions_legal     # vendor: medplum

One model with the options of all; an option given to an invariant it does not apply to is an error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from harness.checks.base import CheckBase
from harness.durations import Duration
from harness.names import VendorName

InvariantName = Literal[
    "no_job_lost_or_duplicated",
    "consent_never_bypassed",
    "no_phi_to_medplum",
    "no_expired_or_revoked_credential",
    "every_write_audited",
    "breaker_transitions_legal",
]
_OPTIONS: dict[str, tuple[str, ...]] = {
    "no_job_lost_or_duplicated": ("stall_timeout", "allow_pending"),
    "no_phi_to_medplum": ("require_evidence",),
    "no_expired_or_revoked_credential": ("vendor", "margin"),
    "breaker_transitions_legal": ("vendor",),
}


class Invariant(CheckBase):
    check: Literal["invariant"]
    invariant: InvariantName
    vendor: VendorName | None = None
    stall_timeout: Duration = Field(default=60.0, description="an active job silent this long at the end is lost")
    allow_pending: bool = Field(default=True, description="jobs still waiting or delayed at the end are accounted")
    require_evidence: bool = Field(default=True, description="fail when the journal holds no phi.scan to judge by")
    margin: Duration = Field(default=0.0, description="a token within this much of its expiry counts as expired")

    @field_validator("vendor", "stall_timeout", "allow_pending", "require_evidence", "margin")
    @classmethod
    def _option_applies(cls, value: object, info: ValidationInfo) -> object:
        name = info.data.get("invariant")
        option = info.field_name
        if name is not None and option not in _OPTIONS.get(name, ()):
            applies = ", ".join(k for k, v in _OPTIONS.items() if option in v)
            raise ValueError(f"option {option!r} does not apply to invariant {name!r} (it applies to: {applies})")
        return value

    def default_name(self) -> str:
        return f"invariant[{self.invariant}" + (f",{self.vendor}]" if self.vendor else "]")
