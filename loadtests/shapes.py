"""Load shapes: ramp, steady, spike, soak (`LoadTestShape`), chosen with `EHRLAB_SHAPE`.

Each locustfile ends with `EhrlabShape = shapes.selected()`: the chosen shape as a concrete class, or
None (locust then runs plain `-u/-r/-t`). The classes here are abstract so importing this module
never adds a shape by itself. Sizes come from EHRLAB_USERS, EHRLAB_SPAWN_RATE and EHRLAB_RUN_TIME_S.
"""

from __future__ import annotations

import math
import os

from locust import LoadTestShape


class _Shape(LoadTestShape):
    abstract = True

    def __init__(self) -> None:
        super().__init__()
        self.users = max(1, int(os.environ.get("EHRLAB_USERS", "10")))
        self.rate = max(0.1, float(os.environ.get("EHRLAB_SPAWN_RATE", "10")))
        self.duration = float(os.environ.get("EHRLAB_RUN_TIME_S", "30"))

    def users_at(self, t: float) -> tuple[int, float]:
        raise NotImplementedError

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.duration:
            return None
        return self.users_at(t)


class Steady(_Shape):
    """All users from the start (at the spawn rate) until the end."""

    abstract = True

    def users_at(self, t: float) -> tuple[int, float]:
        return self.users, self.rate


class Ramp(_Shape):
    """From one user up to all of them over the first half of the run, then hold."""

    abstract = True

    def users_at(self, t: float) -> tuple[int, float]:
        ramp = self.duration / 2
        return max(1, math.ceil(self.users * min(1.0, t / ramp))), max(self.rate, self.users / ramp)


class Spike(_Shape):
    """A quarter of the users, all of them at once from 40 % to 60 % of the run, then a quarter again."""

    abstract = True

    def users_at(self, t: float) -> tuple[int, float]:
        base = max(1, self.users // 4)
        if 0.4 * self.duration <= t < 0.6 * self.duration:
            return self.users, float(self.users)  # the spike arrives in about a second
        return base, float(self.users)


class Soak(_Shape):
    """Steady for a long time, reached gently (10 % of the run): the profile for memory growth."""

    abstract = True

    def users_at(self, t: float) -> tuple[int, float]:
        return self.users, max(0.1, min(self.rate, self.users / max(1.0, 0.1 * self.duration)))


SHAPES: dict[str, type[_Shape]] = {"steady": Steady, "ramp": Ramp, "spike": Spike, "soak": Soak}


def selected() -> type[LoadTestShape] | None:
    name = os.environ.get("EHRLAB_SHAPE", "")
    if not name:
        return None
    base = SHAPES[name]
    return type(f"{base.__name__}Shape", (base,), {"abstract": False})
