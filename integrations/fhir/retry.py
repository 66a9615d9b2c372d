"""Retry policy: which failures are retried, for which requests, and how long to wait in between.

Numbers from runbook `002_437ee203264dfa64.txt §2.1` ("Exponential Backoff: 1s → 10s max with ±25%
jitter"): the base delay before retry n is `min(max_delay_s, initial_delay_s * multiplier**(n-1))`,
i.e. 1, 2, 4, 8, 10, 10 ... s, and the delay actually waited is the base times a factor drawn
uniformly from `[1 - jitter, 1 + jitter]` with the injected RNG.

**The cap applies before the jitter.** With the defaults the longest backoff is 10 s ± 25 %, i.e.
7.5-12.5 s. Capping after the jitter would put every late retry of every client at exactly 10 s,
re-synchronising the herd that jitter is there to spread.

A server's `Retry-After` (delay-seconds or an HTTP-date, RFC 9110 §10.2.3, read relative to the
injected clock's `now()`) is a lower bound on the delay, itself capped at `max_retry_after_s` so one
answer cannot park a call for an hour: `delay = max(jittered backoff, min(retry_after, cap))`. The
RNG is drawn on every call, so a run's random stream does not depend on what the server said.

Which requests may be resent (`retry_safe`): the idempotent methods GET, HEAD, PUT, DELETE (RFC 9110
§9.2.2), and a POST that is a conditional create (`If-None-Exist`): resending it cannot create a
duplicate. A plain POST is never resent: a timeout does not say whether the server created it.
Which failures are retried: those whose `ConnectorError.retryable` is true (`ServerError`,
`RateLimited`, `RequestTimeout`, `ConnectionFailed`, at the FHIR endpoint or the token endpoint: a token
endpoint 503 is a `ServerError` like any other); never a 4xx other than 429 (never an `AuthError`),
never `CircuitOpen` (an open breaker fails fast).

Hand-written rather than tenacity: the connector's loop is five lines, and tenacity's time-based
stops read the system monotonic clock (practice.md §5.4), which breaks virtual time.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from integrations.fhir.errors import CircuitOpen, ConnectorError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})

_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter (runbook 002_437ee203264dfa64.txt §2.1); attempts include the first."""

    max_attempts: int = 3
    initial_delay_s: float = 1.0
    multiplier: float = 2.0
    max_delay_s: float = 10.0
    jitter: float = 0.25
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("delays must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt `attempt` (1-based): 1, 2, 4, 8, 10, 10 ... s."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        try:
            base = self.initial_delay_s * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.max_delay_s
        return min(self.max_delay_s, base)

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt`: jittered backoff, at least the capped Retry-After."""
        jittered = self.base_delay(attempt) * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        if retry_after_s is None:
            return jittered
        return max(jittered, min(max(0.0, retry_after_s), self.max_retry_after_s))

    def should_retry(self, error: ConnectorError, attempt: int, *, retry_safe: bool) -> bool:
        """Whether failed attempt `attempt` of a request is followed by another."""
        if attempt >= self.max_attempts or not retry_safe or isinstance(error, CircuitOpen):
            return False
        return error.retryable


def retry_safe(method: str, *, conditional_create: bool = False) -> bool:
    """Whether resending the request cannot apply it twice: idempotent methods, or POST with If-None-Exist."""
    method = method.upper()
    return method in IDEMPOTENT_METHODS or (method == "POST" and conditional_create)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from `now` given by a Retry-After header (delay-seconds or HTTP-date); None if absent or invalid.

    A date in the past gives 0. A date without a zone (not valid HTTP, but seen) is taken as UTC.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
