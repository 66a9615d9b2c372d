"""Arrival times for workload streams, computed up front from the seeded RNG."""

from __future__ import annotations

import random

from harness.scenario.model import WorkloadStream
from harness.sut.model import SutHttpStream


def arrivals(stream: WorkloadStream | SutHttpStream, duration: float, rng: random.Random) -> list[float]:
    """Scenario times at which `stream` starts an operation, in [start, stop) within the duration.

    `constant` spaces them 1/rate apart; `poisson` draws exponential gaps (a Poisson process),
    which is what independent clinicians opening charts look like.
    """
    end = min(duration, stream.stop if stream.stop is not None else duration)
    times: list[float] = []
    if stream.arrival == "constant":
        gap = 1.0 / stream.rate
        n = 0
        while (t := stream.start + n * gap) < end:
            times.append(round(t, 6))
            n += 1
    else:
        t = stream.start + rng.expovariate(stream.rate)
        while t < end:
            times.append(round(t, 6))
            t += rng.expovariate(stream.rate)
    return times
