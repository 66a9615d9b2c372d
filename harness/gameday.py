"""Game-day mode (`ehrlab run --mode real --gameday`) and real mode's safety rule on targets.

`check_run_targets` runs before anything is loaded or connected: a game day needs real mode, and real mode
talks only to loopback unless `--allow-remote`: `harness.guard`, the lab's one loopback guard.

`GameDayConsole` is the timeline an operator follows, as `RunHooks`: every fault, operator step, breaker
transition, token failure, degradation and provider-health change, queue pause/resume and feature-flag
change as one line with scenario time and wall clock, and the lab's own verdicts (lateness past the
scenario's tolerance, INCONCLUSIVE, ABORTED); failed jobs summarised (a count per queue and error,
at most every 5 s of wall time, not one line per job). When stderr is a terminal, a one-line progress
display (scenario elapsed / duration, operations ok / failed) is redrawn at most once a second under the
lines; otherwise only plain lines are written. The display's pace is wall time (`RealClock()` at scale 1),
not the scenario's: it is for the person watching, and never decides anything in the run.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from harness import guard
from harness.clock import RealClock
from harness.errors import UsageError
from harness.guard import is_loopback_host as is_loopback_host  # re-exported: the guard's own
from harness.hooks import RunHooks
from harness.journal import (
    BreakerEvent,
    CredentialRejectedEvent,
    DegradationActivatedEvent,
    DegradationClearedEvent,
    Event,
    FaultFailed,
    FaultStarted,
    FaultStopped,
    FlagChangedEvent,
    JobEvent,
    LabAborted,
    LabInconclusive,
    LabTiming,
    OperationEvent,
    ProviderHealthEvent,
    QueueEvent,
    StepDone,
    StepFailed,
    TokenFailedEvent,
)
from harness.report.timeline import fault_params, scenario_clock
from harness.steps.operator import PROMPT_ACTIVE

if TYPE_CHECKING:
    from harness.runner import ScenarioRun
    from harness.scenario.model import Scenario

PROGRESS_EVERY_S = 1.0
JOB_SUMMARY_EVERY_S = 5.0


def check_run_targets(mode: str, *, gameday: bool, allow_remote: bool,
                      environ: Mapping[str, str] | None = None) -> None:
    """Refuse (UsageError, exit 2) a game day outside real mode, and a real-mode target outside loopback
    without `allow_remote` (`harness.guard`, the one loopback guard). Called before any scenario is loaded or
    any connection is made."""
    if gameday and mode != "real":
        raise UsageError("--gameday needs --mode real: a game day runs over real sockets on the real clock")
    if mode == "real":
        guard.toxiproxy_url(environ, allow_remote=allow_remote)


class GameDayConsole(RunHooks):
    """Prints the timeline of a real-mode run as it happens (see the module docstring)."""

    def __init__(self, out: TextIO | None = None, *, time_scale: float = 1.0) -> None:
        self._out = out if out is not None else sys.stderr
        self._tty = _isatty(self._out)
        self._wall = RealClock()  # real-time: the operator's wall clock, shown beside scenario time
        self._scale = time_scale
        self._scenario = ""
        self._duration = 0.0
        self._started = 0.0
        self._last_t = 0.0
        self._ok = 0
        self._failed = 0
        self._paused_s = 0.0
        self._jobs_failed: Counter[tuple[str, str]] = Counter()
        self._last_job_summary = 0.0
        self._progress_shown = False
        self._last_draw: float | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- RunHooks

    def scenario_started(self, scenario: Scenario, mode: str, seed: int) -> None:
        self._scenario, self._duration = scenario.name, scenario.duration
        self._started = self._last_job_summary = self._wall.monotonic()
        self._ok = self._failed = 0
        self._paused_s = self._last_t = 0.0
        self._jobs_failed.clear()
        scale = f", {self._scale:g}x faster than the wall" if self._scale != 1 else ""
        self._line(f"== {scenario.name} ({mode}, seed {seed}, {scenario.duration:g}s{scale}) "
                   f"started at {self._wall_clock()}")
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def event(self, event: Event) -> None:
        self._last_t = max(self._last_t, event.t)
        if isinstance(event, OperationEvent):
            if event.ok:
                self._ok += 1
            else:
                self._failed += 1
            return
        if isinstance(event, JobEvent) and event.kind == "job.failed":
            self._jobs_failed[(event.queue, event.error or "unknown")] += 1
            return
        text = describe(event)
        if text is not None:
            if isinstance(event, StepDone) and isinstance(event.params.get("waited_s"), float):
                self._paused_s += float(event.params["waited_s"] or 0.0)
            self._line(f"  [{scenario_clock(event.t):>10} | {self._wall_clock()}] {text}")

    def scenario_finished(self, run: ScenarioRun) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._flush_jobs()
        self._clear_progress()
        self._line(f"== {run.scenario.name}: {run.verdict.upper()} at {self._wall_clock()} ({self._ok} operations "
                   f"ok, {self._failed} failed)")

    # -- output

    def _wall_clock(self) -> str:
        return self._wall.now().strftime("%H:%M:%SZ")

    def _line(self, text: str) -> None:
        self._clear_progress()
        print(text, file=self._out, flush=True)
        self._draw_progress()

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self._out.write("\r\x1b[K")
            self._out.flush()
            self._progress_shown = False

    def progress_text(self) -> str:
        elapsed = min(max(self._last_t, (self._wall.monotonic() - self._started) * self._scale),
                      self._duration + self._paused_s)
        return (f"  {self._scenario}: {scenario_clock(elapsed)} / {scenario_clock(self._duration)}"
                + (f" (+{self._paused_s:g}s paused)" if self._paused_s else "")
                + f" | operations {self._ok} ok, {self._failed} failed | {self._wall_clock()}")

    def _draw_progress(self) -> None:
        """Redraw the progress line, at most once every PROGRESS_EVERY_S of wall time (a line printed sooner
        leaves it off until the next tick)."""
        if not self._tty or not self._scenario or PROMPT_ACTIVE.is_set():
            return
        now = self._wall.monotonic()
        if self._last_draw is not None and now - self._last_draw < PROGRESS_EVERY_S:
            return
        self._last_draw = now
        self._out.write("\r\x1b[K" + self.progress_text())
        self._out.flush()
        self._progress_shown = True

    def _flush_jobs(self) -> None:
        if not self._jobs_failed:
            return
        counts = sorted(self._jobs_failed.items())
        parts = ", ".join(f"{count} on {queue} ({error})" for (queue, error), count in counts)
        self._jobs_failed.clear()
        self._line(f"  [{scenario_clock(self._last_t):>10} | {self._wall_clock()}] jobs failed for good: {parts}")

    async def _tick(self) -> None:
        while True:
            await self._wall.sleep(PROGRESS_EVERY_S)  # real-time: the display refreshes on the wall clock
            if self._wall.monotonic() - self._last_job_summary >= JOB_SUMMARY_EVERY_S:
                self._last_job_summary = self._wall.monotonic()
                self._flush_jobs()
            self._draw_progress()


def describe(event: Event) -> str | None:
    """The game-day line for an event, or None for events the operator does not follow one by one."""
    match event:
        case FaultStarted():
            params = fault_params(event.params)
            return f"fault {event.fault_id} START {event.fault} on {event.target}" + (f" ({params})" if params else "")
        case FaultStopped():
            return f"fault {event.fault_id} STOP  {event.fault} on {event.target}"
        case FaultFailed():
            return f"fault {event.fault_id} FAILED to {event.action}: {event.error.split(':')[0]}"
        case StepDone() if event.action == "manual":
            outcome = ("skipped" if event.params.get("skipped") else "confirmed" if event.params.get("confirmed")
                       else "timed out" if event.params.get("timed_out") else "not confirmed")
            return f"step {event.step_id} manual@{event.vendor} {outcome}: {event.params.get('instruction')}"
        case StepDone():
            params = fault_params(event.params)
            return f"step {event.step_id} {event.action}@{event.vendor} done" + (f" ({params})" if params else "")
        case StepFailed():
            return f"step {event.step_id} {event.action}@{event.vendor} FAILED: {event.error}"
        case BreakerEvent():
            return f"breaker {event.breaker}: {event.from_state} -> {event.to_state}" + (
                " (manual)" if event.manual else "")
        case TokenFailedEvent():
            return f"token request to {event.vendor} failed: {event.error}"
        case CredentialRejectedEvent():
            return f"credential rejected by {event.vendor}"
        case ProviderHealthEvent():
            return f"provider {event.vendor}: {event.from_status} -> {event.to_status}"
        case DegradationActivatedEvent():
            return f"degradation {event.vendor}: fallback to cached reads ({', '.join(event.reasons)})"
        case DegradationClearedEvent():
            return f"degradation {event.vendor}: cleared after {event.duration_s:g}s"
        case FlagChangedEvent():
            return f"flag {event.flag} ({event.scope}): {event.previous} -> {event.enabled}"
        case LabTiming() if event.exceeded:
            return f"the lab ran late: {event.worst} (tolerance {event.tolerance_s:g} s of scenario time)"
        case LabInconclusive():
            return f"INCONCLUSIVE: {event.reason}"
        case LabAborted():
            return f"ABORTED ({event.signal}): faults stopped, writing the report"
        case QueueEvent() if event.kind in ("queue.paused", "queue.resumed", "queue.store_unavailable"):
            return f"queue {event.queue} {event.kind.split('.', 1)[1].replace('_', ' ')}"
    return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False
