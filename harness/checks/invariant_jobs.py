"""`no_job_lost_or_duplicated` (runbook 002 §2.2: attempts, stalled-job recovery, at-least-once delivery).

Over the job queue rebuilt from `job.*` / `queue.*` events (`harness.sla.queue_state`):
- duplicated: a job added again without `job.duplicated` (the queue took a second copy), started while
  a worker held it (two workers at once) or completed twice. A rerun after a stall, a retry or an
  operator's retry is legitimate: the state machine allows it and it is not counted.
- lost: at the end a job is active and has had no event for `stall_timeout` (its worker is gone and
  stall recovery never took it back), or a job event names a job never added; with `allow_pending:
  false`, also a job still waiting or delayed at the end (every job must reach completed or failed).
Completed, failed (for good) and removed (retention, clean) jobs are accounted for. Matched: the `job.*`
events read; none: matched nothing.
"""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.invariant_models import Invariant
from harness.checks.verdict import Verdict
from harness.journal import JobEvent
from harness.sla.queue_state import QueueReplay

_SHOWN = 3


def jobs_accounted(spec: Invariant, ctx: CheckContext) -> Verdict:
    replay = QueueReplay.of(sorted(ctx.events, key=lambda e: e.t))
    read = sum(1 for e in ctx.events if isinstance(e, JobEvent))
    end = max(ctx.duration, max((e.t for e in ctx.events), default=0.0))
    problems = [f"{p.job_id}: {p.kind} ({p.detail})" for p in replay.problems]
    pending = 0
    for track in replay.jobs.values():
        if track.state == "active" and end - track.last_t > spec.stall_timeout:
            problems.append(f"{track.job_id}: lost (active since {track.since:g}s, silent for "
                            f"{end - track.last_t:g}s, never taken back as stalled)")
        elif track.state in ("waiting", "delayed", "active"):
            pending += 1
            if not spec.allow_pending and track.state != "active":
                problems.append(f"{track.job_id}: unfinished ({track.state} at the end)")
    states: dict[str, int] = {}
    for track in replay.jobs.values():
        states[track.state] = states.get(track.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no jobs"
    threshold = "every job added is completed, failed, removed or still queued; none ran twice at once"
    if not spec.allow_pending:
        threshold = "every job added is completed, failed or removed by the end; none ran twice at once"
    if problems:
        more = f"; {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        return Verdict(False, len(problems), "jobs", threshold, "; ".join(problems[:_SHOWN]) + more, matched=read)
    if not read:
        return Verdict(True, 0, "jobs", threshold, "", matched=0, empty="no job event: no job was ever queued")
    return Verdict(True, 0, "jobs", threshold, f"{len(replay.jobs)} job(s): {summary}", matched=read)
