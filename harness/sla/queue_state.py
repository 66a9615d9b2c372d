"""The job queue reconstructed from the journal: every job's state over time, queue depth gauges, pauses.

Replays `job.*` and `queue.*` events (BullMQ's state machine, `integrations.queue`): added -> waiting (or
delayed), promoted -> waiting, started -> active, completed / retry (-> delayed) / failed / stalled (->
waiting, or failed), retried (failed -> waiting); `queue.removed` takes the oldest finished jobs of its
state out (retention, clean). An event that the state machine does not allow is a `Problem`: a job
started while active (two workers ran it), completed twice, or seen without ever being added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from harness.journal import Event, JobEvent, QueueEvent

JobState = Literal["waiting", "delayed", "active", "completed", "failed", "removed"]
GAUGE_STATES: tuple[JobState, ...] = ("waiting", "delayed", "active", "failed")
ProblemKind = Literal["duplicate", "unknown", "illegal"]


@dataclass(slots=True)
class JobTrack:
    queue: str
    job_id: str
    name: str
    state: JobState
    since: float  # when it entered `state`
    last_t: float
    runs: int = 0  # job.started events
    reruns_allowed: int = 0  # stalls, retries and operator retries that legitimately run it again


@dataclass(frozen=True, slots=True)
class Problem:
    t: float
    queue: str
    job_id: str
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class Pause:
    queue: str
    paused: float
    resumed: float | None


# event kind -> (states it may come from, state it leads to); None: any state, no change
_MOVES: dict[str, tuple[tuple[JobState, ...], JobState]] = {
    "job.promoted": (("delayed", "waiting"), "waiting"),
    "job.started": (("waiting", "delayed"), "active"),
    "job.completed": (("active",), "completed"),
    "job.retry": (("active",), "delayed"),
    "job.failed": (("active",), "failed"),
    "job.retried": (("failed",), "waiting"),
}


@dataclass
class QueueReplay:
    jobs: dict[tuple[str, str], JobTrack] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: (t, queue, counts per gauge state) after every event that changed a count
    timeline: list[tuple[float, str, dict[JobState, int]]] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    _counts: dict[str, dict[JobState, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[Event]) -> QueueReplay:
        replay = cls()
        for event in events:
            if isinstance(event, JobEvent):
                replay._job(event)
            elif isinstance(event, QueueEvent):
                replay._queue(event)
        return replay

    def _set(self, track: JobTrack, state: JobState, t: float) -> None:
        counts = self._counts.setdefault(track.queue, dict.fromkeys(GAUGE_STATES, 0))
        if track.state in counts:
            counts[track.state] -= 1
        if state in counts:
            counts[state] += 1
        track.state, track.since = state, t
        self.timeline.append((t, track.queue, dict(counts)))

    def _problem(self, event: JobEvent, kind: ProblemKind, detail: str) -> None:
        self.problems.append(Problem(event.t, event.queue, event.job_id, kind, detail))

    def _job(self, event: JobEvent) -> None:
        key = (event.queue, event.job_id)
        track = self.jobs.get(key)
        if event.kind == "job.added":
            if track is not None and track.state != "removed":
                self._problem(event, "duplicate", f"added again at {event.t:g}s while {track.state} "
                                                  "(no job.duplicated: the queue took a second copy)")
            track = JobTrack(event.queue, event.job_id, event.name, "removed", event.t, event.t)
            self.jobs[key] = track
            self._set(track, "delayed" if (event.delay_s or 0) > 0 else "waiting", event.t)
            return
        if track is None or track.state == "removed":
            self._problem(event, "unknown", f"{event.kind} at {event.t:g}s for a job the journal never saw added")
            return
        track.last_t = event.t
        if event.kind in ("job.duplicated", "job.lock_lost"):
            return  # de-duplicated add; a discarded outcome of a job taken back as stalled
        if event.kind == "job.stalled":
            self._stalled(event, track)
            return
        allowed, target = _MOVES[event.kind]
        if track.state not in allowed:
            duplicate = event.kind in ("job.started", "job.completed") and track.state in ("active", "completed")
            verb = "started" if event.kind == "job.started" else event.kind.removeprefix("job.")
            self._problem(event, "duplicate" if duplicate else "illegal",
                          f"{verb} at {event.t:g}s while {track.state} (since {track.since:g}s)")
            if event.kind == "job.started":
                track.runs += 1
            return
        if event.kind == "job.started":
            track.runs += 1
        elif event.kind in ("job.retry", "job.retried"):
            track.reruns_allowed += 1
        self._set(track, target, event.t)

    def _stalled(self, event: JobEvent, track: JobTrack) -> None:
        if track.state != "active":
            self._problem(event, "illegal", f"stalled at {event.t:g}s while {track.state}")
            return
        track.reruns_allowed += 1
        self._set(track, "failed" if event.failed else "waiting", event.t)

    def _queue(self, event: QueueEvent) -> None:
        if event.kind == "queue.paused":
            self.pauses.append(Pause(event.queue, event.t, None))
        elif event.kind == "queue.resumed":
            for i, pause in enumerate(self.pauses):
                if pause.queue == event.queue and pause.resumed is None:
                    self.pauses[i] = Pause(pause.queue, pause.paused, event.t)
        elif event.kind == "queue.removed" and event.state in ("completed", "failed"):
            finished = sorted((t for t in self.jobs.values() if t.queue == event.queue and t.state == event.state),
                              key=lambda t: t.since)
            for track in finished[: event.count or 0]:
                self._set(track, "removed", event.t)

    def gauge(self, state: JobState) -> list[tuple[float, float]]:
        """(t, jobs in `state` across all queues) at every change, in journal order."""
        per_queue: dict[str, int] = {}
        points: list[tuple[float, float]] = []
        for t, queue, counts in self.timeline:
            per_queue[queue] = counts[state]
            points.append((t, float(sum(per_queue.values()))))
        return points

    def drains(self) -> list[tuple[float, float, bool]]:
        """For each pause: (paused at, seconds until no job of that queue was active, drained?).
        Undrained pauses measure until the pause ended (or the last event)."""
        end = max((t for t, _, _ in self.timeline), default=0.0)
        out = []
        for pause in self.pauses:
            active = 0
            for t, queue, counts in self.timeline:
                if queue == pause.queue and t <= pause.paused:
                    active = counts["active"]
            if active == 0:
                out.append((pause.paused, 0.0, True))
                continue
            limit = pause.resumed if pause.resumed is not None else end
            drained_at = next((t for t, queue, counts in self.timeline
                               if queue == pause.queue and pause.paused < t <= limit and counts["active"] == 0), None)
            if drained_at is None:
                out.append((pause.paused, max(0.0, limit - pause.paused), False))
            else:
                out.append((pause.paused, drained_at - pause.paused, True))
        return out
