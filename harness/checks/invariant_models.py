"""`check: invariant`: properties every run must keep, checked over its journal (DESIGN.md "checks").

    - check: invariant
      invariant: no_job_lost_or_duplicated     # stall_timeout: 60s, allow_pending: true
    - check: invariant
      invariant: consent_never_bypassed
    - check: invariant
      invariant: no_phi_to_medplum             # no phi.scan to judge by: matched nothing
    - check: invariant
      invariant: no_expired_or_revoked_credential   # vendor: epic, margin: 60s (002 §2.1)
    - check: invariant
      invariant: every_write_audited
    - check: invariant
      invariant: breaker_transitions_legal     # vendor: medplum, or breaker: epic_prod

One model with the options of all; an option given to an invariant it does not apply to is an error.
Each reports what it matched (jobs, consent checks and syncs, resources scanned, token-authenticated
requests, sync writes, transitions) and fails with "matched nothing: ..." when there was nothing to judge,
unless `allow_empty: true`. `breaker_transitions_legal` takes `breaker:` or `vendor:` like the breaker
checks (`harness.checks.models`): with `vendor`, the scenario resolves it to that vendor's breaker.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.checks.base import CheckBase
from harness.durations import Duration
from harness.names import VendorName

#: A breaker as the journal names it: a vendor (`epic`) or a failover system (`epic_prod`); the scenario checks
#: it is one of its setup's (`Scenario.breakers`).
BreakerName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)]

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
    "no_expired_or_revoked_credential": ("vendor", "margin"),
    "breaker_transitions_legal": ("vendor", "breaker"),
}


class Invariant(CheckBase):
    check: Literal["invariant"]
    invariant: InvariantName
    vendor: VendorName | None = None
    breaker: BreakerName | None = Field(default=None, description="breaker_transitions_legal: one breaker by name")
    stall_timeout: Duration = Field(default=60.0, description="an active job silent this long at the end is lost")
    allow_pending: bool = Field(default=True, description="jobs still waiting or delayed at the end are accounted")
    margin: Duration = Field(default=0.0, description="a token within this much of its expiry counts as expired")

    @field_validator("vendor", "breaker", "stall_timeout", "allow_pending", "margin")
    @classmethod
    def _option_applies(cls, value: object, info: ValidationInfo) -> object:
        name = info.data.get("invariant")
        option = info.field_name
        if name is not None and option not in _OPTIONS.get(name, ()):
            applies = ", ".join(k for k, v in _OPTIONS.items() if option in v)
            raise ValueError(f"option {option!r} does not apply to invariant {name!r} (it applies to: {applies})")
        return value

    @model_validator(mode="after")
    def _one_breaker(self) -> Invariant:
        if self.vendor is not None and self.breaker is not None:
            raise ValueError("give vendor or breaker, not both")
        return self

    def breaker_name(self) -> str | None:
        """breaker_transitions_legal's breaker: `breaker`, as given or resolved from `vendor` by the scenario."""
        return self.breaker or self.vendor

    def default_name(self) -> str:
        who = self.vendor or self.breaker
        return f"invariant[{self.invariant}" + (f",{who}]" if who else "]")
