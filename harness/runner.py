"""Run one scenario: build the lab, play the timeline (workload arrivals and fault actions at their
scenario times), drain, evaluate the checks over the journal.

The timeline is computed up front from the seeded RNG and played by one task that sleeps on the
scenario clock until each step, so the order of everything is fixed by the seed, not by races.
Operations run as their own tasks (an open workload: a slow operation does not delay the next).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.checks import CheckResult, evaluate_all
from harness.clock import RealClock, VirtualClock, run_virtual
from harness.faults.driver import FaultDriver
from harness.hooks import RunHooks
from harness.journal import (
    CheckFailed,
    CheckPassed,
    Journal,
    OperationDropped,
    OperationEvent,
    ScenarioEnded,
    ScenarioStarted,
    integration_entry,
)
from harness.lab import Lab, Mode
from harness.report.models import ScenarioSummary
from harness.rng import RandomSource
from harness.scenario.model import Scenario, WorkloadStream
from harness.steps.catalogue import Step
from harness.steps.driver import StepDriver
from harness.workload.operations import OPERATIONS, OperationContext, WorkloadError
from harness.workload.schedule import arrivals
from integrations.clock import Clock
from integrations.errors import IntegrationError
from integrations.events import (
    EventListener,
    IntegrationEvent,
)


@dataclass
class ScenarioRun:
    scenario: Scenario
    file: Path
    mode: Mode
    seed: int
    journal: Journal
    checks: list[CheckResult]

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        return "pass" if all(c.passed for c in self.checks) else "fail"


@dataclass(order=True)
class _Step:
    t: float
    priority: int  # at the same time: fault stops (0), fault starts (1), operator steps (2), then arrivals (3)
    index: int
    action: Callable[[], Awaitable[None]] = field(compare=False)


def journal_listener(journal: Journal) -> EventListener:
    """Turn the integration's events into journal events stamped with scenario time."""

    def listen(event: IntegrationEvent) -> None:
        entry = integration_entry(event, journal.elapsed())
        if entry is not None:
            journal.add(entry)

    return listen


class _Workload:
    def __init__(self, lab: Lab, journal: Journal, sources: RandomSource) -> None:
        self._lab = lab
        self._journal = journal
        self._sources = sources
        self._tasks: dict[int, asyncio.Task[None]] = {}  # by op id: drained and cancelled in launch order
        self._in_flight: dict[int, int] = {}
        self._next_id = 0
        self.count = 0

    def launcher(self, index: int, stream: WorkloadStream) -> Callable[[], Awaitable[None]]:
        vendor = self._lab.vendor(stream.vendor)
        ctx = OperationContext(connector=vendor.client.connector, patients=vendor.patients,
                               rng=self._sources.stream(f"workload.{index}.choices"), pipeline=self._lab.pipeline,
                               resilient=self._lab.resilient.get(stream.vendor), failover=self._lab.failover)
        operation = OPERATIONS[stream.operation]
        self._in_flight[index] = 0

        async def launch() -> None:
            if self._in_flight[index] >= stream.max_in_flight:
                self._journal.add(OperationDropped(t=self._journal.elapsed(), operation=stream.operation,
                                                   vendor=stream.vendor, in_flight=self._in_flight[index]))
                return
            self._next_id += 1
            self.count += 1
            op_id = self._next_id
            task = asyncio.create_task(self._run(op_id, index, stream, operation, ctx))
            self._tasks[op_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(op_id, None))

        return launch

    async def _run(self, op_id: int, index: int, stream: WorkloadStream,
                   operation: Callable[[OperationContext], Awaitable[None]], ctx: OperationContext) -> None:
        self._in_flight[index] += 1
        started = self._journal.elapsed()
        error: str | None = None
        try:
            await operation(ctx)
        except (IntegrationError, WorkloadError) as exc:  # every typed error the integration documents
            error = type(exc).__name__
        except asyncio.CancelledError:
            error = "Cancelled"
            raise
        except Exception as exc:  # a bug in the system under test: record it, keep the run going
            error = f"Unexpected{type(exc).__name__}"
        finally:
            self._in_flight[index] -= 1
            end = self._journal.elapsed()
            self._journal.add(OperationEvent(t=end, op_id=op_id, operation=stream.operation, vendor=stream.vendor,
                                             started=started, duration_ms=round((end - started) * 1000, 3),
                                             ok=error is None, error=error))

    async def drain(self, clock: Clock, seconds: float) -> int:
        """Wait up to `seconds` for in-flight operations; cancel the rest and return how many.

        Cancelled in op id order, so they are journaled in that order (never a set's hash order)."""
        pending = [self._tasks[op_id] for op_id in sorted(self._tasks)]
        if not pending:
            return 0
        try:
            async with clock.timeout(seconds):
                await asyncio.gather(*pending, return_exceptions=True)
            return 0
        except TimeoutError:
            left = [t for t in pending if not t.done()]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            return len(left)


def _timeline(scenario: Scenario, sources: RandomSource, driver: FaultDriver, workload: _Workload,
              operator: StepDriver) -> list[_Step]:
    steps: list[_Step] = []
    for i, fault in enumerate(scenario.faults):
        fault_id = f"f{i + 1}"

        def start(fault_id: str = fault_id, fault: object = fault) -> Awaitable[None]:
            return driver.start(fault_id, fault)  # type: ignore[arg-type]

        def stop(fault_id: str = fault_id) -> Awaitable[None]:
            return driver.stop(fault_id)

        steps.append(_Step(fault.at, 1, len(steps), start))
        if fault.for_ is not None and fault.at + fault.for_ < scenario.duration:
            steps.append(_Step(round(fault.at + fault.for_, 6), 0, len(steps), stop))
    for i, step in enumerate(scenario.steps):

        def take(step_id: str = f"s{i + 1}", step: Step = step) -> Awaitable[None]:
            return operator.run(step_id, step)

        steps.append(_Step(step.at, 2, len(steps), take))
    for i, stream in enumerate(scenario.workload):
        launch = workload.launcher(i, stream)
        for t in arrivals(stream, scenario.duration, sources.stream(f"workload.{i}.arrivals")):
            steps.append(_Step(t, 3, len(steps), launch))
    steps.sort()
    return steps


async def run_scenario_async(scenario: Scenario, *, file: Path, mode: Mode, seed: int, clock: Clock,
                             hooks: RunHooks | None = None, gameday: bool = False) -> ScenarioRun:
    hooks = hooks or RunHooks()
    sources = RandomSource(seed)
    journal = Journal(clock)
    journal.subscribe(hooks.event)
    lab = Lab(mode=mode, clock=clock, sources=sources, vendors=scenario.vendors(),
              patients=scenario.setup.patients, listener=journal_listener(journal), sync=scenario.setup.sync,
              resilience=tuple(scenario.setup.resilience), failover=scenario.setup.failover)
    async with lab:
        journal.restart()
        hooks.scenario_started(scenario, mode, seed)
        journal.add(ScenarioStarted(t=0.0, scenario=scenario.name, file=file.as_posix(), seed=seed, mode=mode,
                                    duration_s=scenario.duration))
        driver = FaultDriver(lab, journal)
        workload = _Workload(lab, journal, sources)
        operator = StepDriver(lab, journal, sources, gameday=gameday)
        try:
            for step in _timeline(scenario, sources, driver, workload, operator):
                # paused_s: how long manual steps waited for the operator (a game day); always 0 otherwise
                await clock.sleep(step.t + operator.paused_s - journal.elapsed())
                await step.action()
            await clock.sleep(scenario.duration + operator.paused_s - journal.elapsed())
            await driver.stop_all()
            cancelled = await workload.drain(clock, scenario.drain)
            if lab.pipeline is not None:
                for scan in lab.pipeline.phi_scan(lab.vendor("medplum")):
                    journal.add(scan.model_copy(update={"t": journal.elapsed()}))
        finally:
            await driver.stop_all()
        journal.add(ScenarioEnded(t=journal.elapsed(), scenario=scenario.name, operations=workload.count,
                                  in_flight_cancelled=cancelled))
    checks = evaluate_all(scenario.expectations, journal.events, scenario.runbook[0])
    t_end = journal.elapsed() if mode == "real" else journal.events[-1].t
    for check in checks:
        cls = CheckPassed if check.passed else CheckFailed
        journal.add(cls(t=t_end, check=check.name, observed=check.observed, threshold=check.threshold))
    run = ScenarioRun(scenario=scenario, file=file, mode=mode, seed=seed, journal=journal, checks=checks)
    hooks.scenario_finished(run)
    return run


def summarize(run: ScenarioRun, sha256: str | None = None) -> ScenarioSummary:
    """The run's entry in summary.json (`ehrlab run`, the pytest plugin)."""
    operations = run.journal.of(OperationEvent)
    return ScenarioSummary(
        name=run.scenario.name, file=run.file.as_posix(), description=run.scenario.description,
        runbook=run.scenario.runbook, verdict=run.verdict, duration_s=run.scenario.duration,
        operations=len(operations), operations_failed=sum(1 for o in operations if not o.ok), checks=run.checks,
        sha256=sha256, seed=run.seed)


def run_scenario(scenario: Scenario, *, file: Path, mode: Mode, seed: int, time_scale: float = 1.0,
                 hooks: RunHooks | None = None, gameday: bool = False) -> ScenarioRun:
    """Run one scenario to its verdict, on a virtual loop or on the real clock. `gameday`: manual steps wait
    for the operator at the console (else they are journaled as skipped)."""
    if mode == "virtual":
        return run_virtual(lambda: run_scenario_async(scenario, file=file, mode=mode, seed=seed,
                                                      clock=VirtualClock(), hooks=hooks, gameday=gameday))
    return asyncio.run(run_scenario_async(scenario, file=file, mode=mode, seed=seed,
                                          clock=RealClock(scale=time_scale), hooks=hooks, gameday=gameday))
