"""A queue on the virtual clock with its events recorded, stamped with virtual time."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.clock import VirtualClock
from integrations.events import IntegrationEvent
from integrations.queue import Job, JobQueue, JsonValue, QueueOptions, RateLimit, Worker, WorkerOptions
from integrations.queue.store import JobStore

E = TypeVar("E")

NO_LIMIT: RateLimit | None = None


@dataclass
class Rig:
    store: JobStore
    options: QueueOptions = field(default_factory=QueueOptions)
    clock: VirtualClock = field(default_factory=VirtualClock)
    log: list[tuple[float, IntegrationEvent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue = JobQueue(self.store, self.clock, options=self.options, listener=self.record)

    def record(self, event: IntegrationEvent) -> None:
        self.log.append((self.clock.monotonic(), event))

    @property
    def events(self) -> list[IntegrationEvent]:
        return [event for _, event in self.log]

    def of(self, kind: type[E]) -> list[E]:
        return [event for _, event in self.log if isinstance(event, kind)]

    def times(self, kind: type[Any], **match: object) -> list[float]:
        """Virtual times of the events of `kind` whose fields equal `match`."""
        return [t for t, event in self.log if isinstance(event, kind)
                and all(getattr(event, k) == v for k, v in match.items())]

    def worker(self, handlers: dict[str, Callable[[Job], Awaitable[JsonValue]]], seed: int = 1,
               **options: Any) -> Worker:
        options.setdefault("limiter", NO_LIMIT)
        return Worker(self.queue, handlers, rng=random.Random(seed), options=WorkerOptions(**options))

    async def until_idle(self, timeout_s: float = 3600.0, step_s: float = 0.05) -> None:
        """Wait (virtual time) until no job is waiting, active or delayed."""
        async with self.clock.timeout(timeout_s):
            while (await self.queue.stats()).pending:
                await self.clock.sleep(step_s)


async def noop(job: Job) -> JsonValue:
    return None
