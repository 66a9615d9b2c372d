"""Real mode measures its own lateness, so that a lab too slow to keep its timeline is INCONCLUSIVE, not a FAIL
blamed on the system under test.

Three figures, all in scenario seconds (at `--time-scale 40` one wall millisecond is 40 scenario ms):
- event-loop lag: a sampler task sleeps `SAMPLE_EVERY_WALL_S` of wall time on the lab's clock, over and over,
  and measures how late it woke. The lab, the simulators, the proxy and the built-in integration share that
  loop, so a stall delays all of them: client timeouts fire, latencies grow, arrivals bunch up;
- timeline lateness: how late each fault switch and operator step landed against its planned scenario time
  (the planned time plus what manual steps paused; a manual step is judged by when it started, since the
  operator's answer is not the lab's lateness);
- admin API latency: how long the proxy / simulator-admin calls that carried out each switch or step took
  (part of its lateness, journaled beside it as `call_s`).

Each fault switch and step is journaled as a `lab.lag` event, and event-loop samples past a quarter of the
tolerance too (noise below that would bloat the journal); `lab.timing` closes the scenario with the maxima,
the worst figure in words and whether the scenario's `lab.max_lateness` was exceeded. Virtual mode journals
none of this: its time cannot run late, and its journal stays byte-identical.

This is measurement of the real clock by design: the sampler reads `RealClock.monotonic()` (the lab's own
clock, scaled), never the system clock directly.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Literal

from harness.clock import RealClock
from harness.journal import Journal, LabLag, LabTiming
from harness.report.timeline import scenario_clock

#: The sampler's period in wall seconds (its period in scenario seconds is this times the time scale).
SAMPLE_EVERY_WALL_S = 0.05
#: Loop samples at or past this share of the tolerance are journaled one by one.
JOURNAL_SAMPLES_FROM = 0.25


def _s(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".") + " s"


class LatenessMonitor:
    """Measure and journal the lab's lateness during one real-mode scenario (see the module docstring)."""

    def __init__(self, clock: RealClock, journal: Journal, *, tolerance_s: float) -> None:
        self._clock = clock
        self._journal = journal
        self.tolerance_s = tolerance_s
        self.samples = 0
        self.loop_max_s = 0.0
        self._loop_worst_t = 0.0
        self.timeline_max_s = 0.0
        self._timeline_worst = ""
        self.call_max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="ehrlab-lateness-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sample(self) -> None:
        period = SAMPLE_EVERY_WALL_S * self._clock.scale  # scenario seconds
        while True:
            due = self._journal.elapsed() + period
            await self._clock.sleep(period)
            late = max(0.0, round(self._journal.elapsed() - due, 6))
            self.samples += 1
            if late > self.loop_max_s:
                self.loop_max_s, self._loop_worst_t = late, due
            if late >= JOURNAL_SAMPLES_FROM * self.tolerance_s:
                self._journal.add(LabLag(t=self._journal.elapsed(), source="loop", what="event loop",
                                         planned=round(due, 6), late_s=late))

    def landed(self, source: Literal["fault", "step"], what: str, *, planned: float, began: float, done: float,
               judge_start: bool = False) -> None:
        """A fault switch or step due at `planned` began at `began` and was carried out at `done` (scenario
        seconds). `judge_start`: its lateness is when it began (a manual step waits for the operator)."""
        late = max(0.0, round((began if judge_start else done) - planned, 6))
        call = round(done - began, 6)
        self.call_max_s = max(self.call_max_s, 0.0 if judge_start else call)
        if late > self.timeline_max_s:
            self.timeline_max_s = late
            verb = "started" if source == "fault" and what.endswith(" start") else "landed"
            name = what.removesuffix(" start").removesuffix(" stop") if source == "fault" else what
            if source == "fault" and what.endswith(" stop"):
                verb = "stopped"
            self._timeline_worst = f"{name} {verb} {_s(late)} late"
        self._journal.add(LabLag(t=self._journal.elapsed(), source=source, what=what, planned=round(planned, 6),
                                 late_s=late, call_s=None if judge_start else call))

    def worst(self) -> str:
        """The worst lateness in words, e.g. "fault f2 started 3.4 s late"."""
        if self.loop_max_s > self.timeline_max_s:
            return f"the event loop stalled {_s(self.loop_max_s)} at {scenario_clock(self._loop_worst_t)}"
        if self._timeline_worst:
            return self._timeline_worst
        return "no lateness measured"

    @property
    def exceeded(self) -> bool:
        return max(self.loop_max_s, self.timeline_max_s) > self.tolerance_s

    def reason(self) -> str | None:
        """Why the run is INCONCLUSIVE ("fault f2 started 3.4 s late (tolerance 1 s)"), or None if on time."""
        if not self.exceeded:
            return None
        return (f"the lab ran late: {self.worst()} (tolerance {_s(self.tolerance_s)} of scenario time at "
                f"{self._clock.scale:g}x)")

    def timing_event(self) -> LabTiming:
        return LabTiming(t=self._journal.elapsed(), time_scale=self._clock.scale, tolerance_s=self.tolerance_s,
                         samples=self.samples, loop_max_s=self.loop_max_s, timeline_max_s=self.timeline_max_s,
                         call_max_s=round(self.call_max_s, 6), worst=self.worst(), exceeded=self.exceeded)
