"""The Redis store: for workers in several processes or on several hosts (redis-py; Lua scripts make each
operation atomic, `integrations/queue/redis_scripts.py` has the key layout).

Two ways to talk to Redis, one store:
- `RedisStore.connect(url, queue)`: a `redis.asyncio` client, for real mode and production.
- `RedisStore.connect(url, queue, blocking=True)`: the synchronous `redis.Redis` client, for virtual
  mode. In virtual time the loop must not wait on sockets: whenever it does, looptime jumps to the next
  timer (measured: 2,000 awaited PINGs moved the virtual clock by 2,056 s), so every round trip would
  cost a random slice of scenario time. A blocking call of ~50 µs keeps virtual time exact, for the same
  reason the SQLite store calls sqlite3 synchronously.

Clients made by `connect` have redis-py's own retries switched off (its default retries a failed
command up to 10 times with real sleeps, and a claim is not safe to repeat blindly): a connection
error surfaces at once as `StoreUnavailable`, and the worker retries on the queue's clock. A client
passed in directly is used as configured. Scripts are loaded with EVALSHA and reloaded after a server
restart (redis-py's `Script` does that on NOSCRIPT). Durability is the server's: run it with
`--appendonly yes` (and `--appendfsync always` to lose nothing acknowledged on a server crash).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry

from integrations.queue import redis_scripts as lua
from integrations.queue.errors import InvalidJobState, JobNotFound, StoreUnavailable
from integrations.queue.model import (
    STALLED_REASON,
    Backoff,
    Claim,
    ClaimRequest,
    Completed,
    Completion,
    Finished,
    Job,
    JobState,
    KeepJobs,
    NewJob,
    Promoted,
    QueueStats,
    Stalled,
    load_json,
    to_ms,
)
from integrations.queue.store import JobStore

# A reply from a script: nested lists of bytes and ints.
Reply = object


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: object) -> int:
    return int(_text(value))


def _list(value: object) -> list[object]:
    return cast(list[object], value) if isinstance(value, list) else []


def _job(job_id: object, flat: object) -> Job:
    items = _list(flat)
    f = {_text(items[i]): _text(items[i + 1]) for i in range(0, len(items), 2)}

    def opt(name: str) -> int | None:
        return int(f[name]) if f.get(name) else None

    return Job(id=_text(job_id), name=f["name"], data=load_json(f["data"]), state=JobState(f["state"]),
               attempts=int(f["attempts"]),
               backoff=Backoff(kind="fixed" if f["bkind"] == "fixed" else "exponential",
                               delay_s=int(f["bdelay"]) / 1000, jitter=float(f["bjitter"])),
               attempts_made=int(f["made"]), stalled_count=int(f["stalled"]), created_ms=int(f["created"]),
               due_ms=opt("due"), processed_ms=opt("processed"), finished_ms=opt("finished"),
               failed_reason=f.get("reason"), result=load_json(f["result"]) if "result" in f else None)


def _keep(keep: KeepJobs) -> list[str]:
    return ["" if keep.age_s is None else str(to_ms(keep.age_s)), "" if keep.count is None else str(keep.count)]


class RedisStore:
    """One queue in Redis, under keys `<prefix>:{<queue>}:...`."""

    def __init__(self, client: aioredis.Redis | redis.Redis, queue: str, *, prefix: str = "ehrlab") -> None:
        if "{" in queue or "}" in queue:
            raise ValueError("queue names must not contain braces")
        self._client = client
        self._queue = queue
        self._p = f"{prefix}:{{{queue}}}:"
        names = ("ADD", "GET", "CLAIM", "EXTEND", "COMPLETE", "RETRY_LATER", "FAIL", "STALLED", "RETRY_FAILED", "TRIM",
                 "SET_PAUSED", "STATS", "JOBS")
        self._scripts: dict[str, Script | AsyncScript] = {
            name: client.register_script(getattr(lua, name)) for name in names}

    @classmethod
    def connect(cls, url: str, queue: str, *, blocking: bool = False, prefix: str = "ehrlab",
                timeout_s: float = 5.0) -> RedisStore:
        """A store with its own client for `url` (`redis://host:port/db`); `blocking` for virtual mode."""
        client: aioredis.Redis | redis.Redis
        if blocking:
            client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=timeout_s,
                                          socket_connect_timeout=timeout_s)
        else:
            client = aioredis.Redis.from_url(url, retry=AsyncRetry(NoBackoff(), 0), socket_timeout=timeout_s,
                                             socket_connect_timeout=timeout_s)
        return cls(client, queue, prefix=prefix)

    @property
    def queue(self) -> str:
        return self._queue

    def _key(self, name: str) -> str:
        return self._p + name

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Reply:
        """Run one script: the single boundary where redis-py's connection errors become `StoreUnavailable`."""
        script = self._scripts[name]
        try:
            if isinstance(script, AsyncScript):
                return cast(Reply, await script(keys=list(keys), args=list(args)))
            return cast(Reply, script(keys=list(keys), args=list(args)))
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # BusyLoadingError (restarting) is one too
            raise StoreUnavailable(f"queue {self._queue!r}: redis {name.lower()}: {type(exc).__name__}",
                                   queue=self._queue, operation=name.lower()) from exc

    async def add(self, jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        args: list[str | int | float] = [self._p]
        for new in jobs:
            args += [new.id or "", new.name, new.data, new.attempts, new.backoff.kind, to_ms(new.backoff.delay_s),
                     repr(new.backoff.jitter), new.created_ms, "" if new.due_ms is None else new.due_ms]
        reply = _list(await self._run("ADD", [self._key("meta"), self._key("wait"), self._key("delayed")], args))
        out: list[tuple[Job, bool]] = []
        for new, item in zip(jobs, reply, strict=True):
            entry = _list(item)
            if _int(entry[0]) == 0:
                out.append((_job(entry[1], entry[2]), False))
                continue
            delayed = new.due_ms is not None and new.due_ms > new.created_ms
            out.append((Job(id=_text(entry[1]), name=new.name, data=load_json(new.data),
                            state=JobState.DELAYED if delayed else JobState.WAITING, attempts=new.attempts,
                            backoff=new.backoff, attempts_made=0, stalled_count=0, created_ms=new.created_ms,
                            due_ms=new.due_ms if delayed else None, processed_ms=None, finished_ms=None,
                            failed_reason=None, result=None), True))
        return out

    async def get(self, job_id: str) -> Job | None:
        flat = _list(await self._run("GET", [self._key(f"job:{job_id}")], []))
        return _job(job_id, flat) if flat else None

    async def claim(self, request: ClaimRequest) -> Claim:
        keys = [self._key(k) for k in ("meta", "wait", "delayed", "active", "starts")]
        args: list[str | int | float] = [
            self._p, request.now_ms, request.token, request.lock_until_ms, request.limit,
            "" if request.rate_max is None else request.rate_max,
            "" if request.rate_window_ms is None else request.rate_window_ms,
            "" if request.global_concurrency is None else request.global_concurrency]
        jobs, promoted, wake, paused, limited = _list(await self._run("CLAIM", keys, args))
        pairs = _list(promoted)
        return Claim(jobs=[_job(e[0], e[1]) for e in map(_list, _list(jobs))],
                     promoted=[Promoted(id=_text(pairs[i]), name=_text(pairs[i + 1])) for i in range(0, len(pairs), 2)],
                     wake_ms=None if _int(wake) < 0 else _int(wake), paused=_int(paused) == 1,
                     rate_limited=_int(limited) == 1)

    async def extend_locks(self, locks: Sequence[tuple[str, str]], until_ms: int) -> list[str]:
        if not locks:
            return []
        args: list[str | int | float] = [self._p, until_ms]
        for job_id, token in locks:
            args += [job_id, token]
        return [_text(x) for x in _list(await self._run("EXTEND", [self._key("active")], args))]

    async def complete(self, completions: Sequence[Completion], now_ms: int, keep: KeepJobs) -> Completed:
        args: list[str | int | float] = [self._p, now_ms, *_keep(keep)]
        for c in completions:
            args += [c.job_id, c.token, c.result]
        *ok, removed = _list(await self._run("COMPLETE", [self._key("active"), self._key("completed")], args))
        return Completed(ok=[_int(x) == 1 for x in ok], removed=_int(removed))

    async def retry_later(self, job_id: str, token: str, now_ms: int, due_ms: int, reason: str) -> Finished:
        ok = await self._run("RETRY_LATER", [self._key("active"), self._key("wait"), self._key("delayed")],
                             [self._p, job_id, token, now_ms, due_ms, reason])
        return Finished(ok=_int(ok) == 1)

    async def fail(self, job_id: str, token: str, now_ms: int, reason: str, keep: KeepJobs) -> Finished:
        ok, removed = _list(await self._run("FAIL", [self._key("active"), self._key("failed")],
                                            [self._p, job_id, token, now_ms, reason, *_keep(keep)]))
        return Finished(ok=_int(ok) == 1, removed=_int(removed))

    async def recover_stalled(self, now_ms: int, max_stalled_count: int, keep: KeepJobs) -> list[Stalled]:
        reply = await self._run("STALLED", [self._key("active"), self._key("wait"), self._key("failed")],
                                [self._p, now_ms, max_stalled_count, STALLED_REASON, *_keep(keep)])
        return [Stalled(id=_text(e[0]), name=_text(e[1]), stalled_count=_int(e[2]), failed=_int(e[3]) == 1)
                for e in map(_list, _list(reply))]

    async def retry_failed(self, job_id: str | None, now_ms: int) -> list[Job]:
        reply = _list(await self._run("RETRY_FAILED", [self._key("failed"), self._key("wait")],
                                      [self._p, job_id or ""]))
        status = _int(reply[0])
        if status == -1:
            raise JobNotFound(job_id or "", queue=self._queue)
        if status == -2:
            raise InvalidJobState(job_id or "", _text(reply[1]), "failed", queue=self._queue)
        return [_job(e[0], e[1]) for e in map(_list, reply[1:])]

    async def trim(self, state: JobState, now_ms: int, keep: KeepJobs, limit: int | None = None) -> int:
        if state not in (JobState.COMPLETED, JobState.FAILED):
            raise ValueError(f"only completed and failed jobs are trimmed, not {state.value}")
        return _int(await self._run("TRIM", [self._key(state.value)],
                                    [self._p, now_ms, *_keep(keep), -1 if limit is None else limit]))

    async def set_paused(self, paused: bool) -> bool:
        return _int(await self._run("SET_PAUSED", [self._key("meta")], ["1" if paused else "0"])) == 1

    async def is_paused(self) -> bool:
        return _int(_list(await self._run("STATS", self._stats_keys(), []))[0]) == 1

    def _stats_keys(self) -> list[str]:
        return [self._key(k) for k in ("meta", "wait", "active", "completed", "failed", "delayed")]

    async def stats(self) -> QueueStats:
        reply = _list(await self._run("STATS", self._stats_keys(), []))
        paused, waiting, active, completed, failed, delayed = (_int(x) for x in reply)
        return QueueStats(waiting=0 if paused else waiting, active=active, completed=completed, failed=failed,
                          delayed=delayed, paused=waiting if paused else 0)

    async def jobs(self, state: JobState, limit: int, offset: int = 0) -> list[Job]:
        if limit <= 0:
            return []
        kind = {JobState.WAITING: "list", JobState.COMPLETED: "desc", JobState.FAILED: "desc"}.get(state, "asc")
        key = self._key("wait" if state == JobState.WAITING else state.value)
        reply = await self._run("JOBS", [key], [self._p, kind, offset, limit])
        return [_job(e[0], e[1]) for e in map(_list, _list(reply))]

    async def close(self) -> None:
        if isinstance(self._client, aioredis.Redis):
            await self._client.aclose()
        else:
            self._client.close()


if TYPE_CHECKING:  # mypy proves the store implements the interface
    _implements: type[JobStore] = RedisStore
