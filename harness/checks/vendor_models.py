"""Vendor-side checks: judged from what the vendors saw (`vendor.request` events, `harness.journal.vendor`),
never from the integration's own events, so they hold the built-in integration and an external system under
test to the same standard (DESIGN.md "The system under test is a seam").

    - check: no_hammering            # 000 §2: breaker OPEN within 30 s, one probe round per 60 s
      vendor: medplum                # optional: every vendor by default
      after: 30s                     # the first 30 s of a failing fault are the breaker's to open in
      window: 60s
      max_requests: 3                # per window (the breaker's half-open probe round)
      min_failure_rate: 50%          # a fault counts when this share of the vendor's answers failed
    - check: retry_after_honoured    # 000 §4 (429: wait and retry): no request before Retry-After
      vendor: cerner
    - check: no_token_storm          # 002 §2.1: tokens reused until 60 s before expiry
      vendor: epic
      window: 60s
      max_requests: 2

Each reports what it matched: the requests inside failing fault windows, the answers carrying a
Retry-After, the token requests. With none, it fails "matched nothing: ..." unless `allow_empty: true`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.checks.base import CheckBase, Ratio
from harness.durations import Duration
from harness.names import VendorName

#: The lab breaker's half-open probe round (`integrations.fhir.breaker.BreakerConfig.permitted_half_open_calls`,
#: resilience4j's default), once per 60 s open period (000_030ea53f0735abf7.txt §2).
PROBE_ROUND = 3


class NoHammering(CheckBase):
    """While a fault on the vendor has it answering 5xx or dropping connections (at least `min_failure_rate` of
    its answers under the fault), after the first `after` of the fault (the breaker's time to open), at most
    `max_requests` requests reach it in each `window` (tumbling windows from the fault's start + `after`)."""

    check: Literal["no_hammering"]
    vendor: VendorName | None = Field(default=None, description="one vendor; every vendor with a failing fault "
                                      "by default")
    after: Duration = Field(default=30.0, description="the breaker opens within this much of the fault (000 §2)")
    window: Duration = Field(default=60.0, gt=0, description="one probe round per this much (000 §2)")
    max_requests: int = Field(default=PROBE_ROUND, ge=0, description="requests allowed per window")
    min_failure_rate: Ratio = Field(default=0.5, description=(
        "a fault counts when at least this share of the vendor's answers under it were 5xx or dropped (the "
        "breaker's failure-rate threshold): a 30 % error rate is not an outage to stop calling"))


class RetryAfterHonoured(CheckBase):
    """No request from a client to a vendor before the time a 429 or 503 with `Retry-After` asked that client to
    wait until (the answer's arrival + its latency + Retry-After)."""

    check: Literal["retry_after_honoured"]
    vendor: VendorName | None = Field(default=None, description="one vendor; every vendor by default")
    slack: Duration = Field(default=0.002, description=(
        "early by at most this much still counts as honoured (the simulators stamp arrivals to the millisecond)"))


class NoTokenStorm(CheckBase):
    """At most `max_requests` token requests to a vendor in each `window` (tumbling windows from the start)."""

    check: Literal["no_token_storm"]
    vendor: VendorName | None = Field(default=None, description="one vendor; every vendor by default")
    window: Duration = Field(default=60.0, gt=0)
    max_requests: int = Field(default=2, ge=0, description=(
        "token requests allowed per window: a token reused until 60 s before expiry (002 §2.1) needs one, and a "
        "rejected one a second"))


VENDOR_SIDE_CHECKS = (NoHammering, RetryAfterHonoured, NoTokenStorm)
