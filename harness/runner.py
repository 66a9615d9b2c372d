"""Run one scenario: build the lab, play the timeline (workload arrivals and fault actions at their
scenario times), drain, evaluate the checks over the journal.

The timeline is computed up front from the seeded RNG and played by one task that sleeps on the
scenario clock until each step, so the order of everything is fixed by the seed, not by races.
Operations run as their own tasks (an open workload: a slow operation does not delay the next).

A scenario ends in one of four verdicts (`harness.report.models.Verdict`): pass or fail by its checks;
inconclusive when the lab could not judge: it could not be built, a fault could not be injected or a step
carried out (`LabError`: the timeline stops there, faults are stopped, the journal so far is kept and no
check is evaluated), or, in real mode, the lab ran later than the scenario's `lab.max_lateness`
(`harness.lateness`: the checks are evaluated and reported, but a failure may be the lab's doing); aborted
when the run was interrupted (SIGINT/SIGTERM, with `handle_signals`): faults are stopped, in-flight operations
cancelled, and the journal so far kept, marked with `lab.aborted`.

In real mode every journal event carries its wall-clock time (`Event.wall`), from a scale-1 `RealClock`, so
a run lines up with the operator's dashboards even at `--time-scale 40`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from harness.checks import CheckResult, evaluate_all
from harness.clock import RealClock, VirtualClock, run_virtual
from harness.errors import LabError
from harness.faults.driver import FaultDriver
from harness.hooks import RunHooks
from harness.journal import (
    CheckFailed,
    CheckPassed,
    Journal,
    LabAborted,
    LabInconclusive,
    OperationDropped,
    OperationEvent,
    ScenarioEnded,
    ScenarioStarted,
    integration_entry,
)
from harness.lab import Lab, Mode
from harness.lateness import LatenessMonitor
from harness.report.models import ScenarioSummary, Verdict
from harness.rng import RandomSource
from harness.scenario.model import Scenario, WorkloadStream
from harness.steps.catalogue import Manual, Step
from harness.steps.driver import StepDriver
from harness.sut.model import SutHttpStream
from harness.vendor_requests import vendor_requests
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
    inconclusive: str | None = None  # why the lab could not judge (then no verdict from the checks)
    aborted: str | None = None  # the signal that interrupted the run ("SIGINT", "SIGTERM")
    started: bool = True  # False: stopped before its timeline began (the lab was being built)
    wall_s: float | None = None  # wall-clock seconds the run took (`run_scenario`), for junit.xml; never journaled
    sut_log: Path | None = None  # the external SUT's stdout and stderr (`harness.sut.process`), if the lab started one

    @property
    def verdict(self) -> Verdict:
        if self.aborted is not None:
            return "aborted"
        if self.inconclusive is not None:
            return "inconclusive"
        return "pass" if all(c.passed for c in self.checks) else "fail"

    @property
    def reason(self) -> str | None:
        """Why the verdict is ABORTED or INCONCLUSIVE, in words (None for pass and fail)."""
        if self.aborted is not None:
            return f"interrupted by {self.aborted}: faults stopped, the journal so far kept, no check evaluated"
        return self.inconclusive


@dataclass(order=True)
class _Step:
    t: float
    priority: int  # at the same time: fault stops (0), fault starts (1), operator steps (2), then arrivals (3)
    index: int
    action: Callable[[], Awaitable[None]] = field(compare=False)
    what: str = field(default="", compare=False)  # a fault switch or operator step, for its lateness (real mode)
    manual: bool = field(default=False, compare=False)


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

    def launcher(self, index: int, stream: WorkloadStream | SutHttpStream) -> Callable[[], Awaitable[None]]:
        operation: Callable[[], Awaitable[None]]
        if isinstance(stream, SutHttpStream):  # a request to the external SUT (`harness.sut.http`)
            operation = self._lab.sut_request(stream)
        else:
            vendor = self._lab.vendor(stream.vendor)
            ctx = OperationContext(connector=vendor.client.connector, patients=vendor.patients,
                                   rng=self._sources.stream(f"workload.{index}.choices"), pipeline=self._lab.pipeline,
                                   resilient=self._lab.resilient.get(stream.vendor), failover=self._lab.failover)
            operation = partial(OPERATIONS[stream.operation], ctx)
        self._in_flight[index] = 0

        async def launch() -> None:
            if self._in_flight[index] >= stream.max_in_flight:
                self._journal.add(OperationDropped(t=self._journal.elapsed(), operation=stream.operation,
                                                   vendor=stream.vendor, in_flight=self._in_flight[index]))
                return
            self._next_id += 1
            self.count += 1
            op_id = self._next_id
            task = asyncio.create_task(self._run(op_id, index, stream, operation))
            self._tasks[op_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(op_id, None))

        return launch

    async def _run(self, op_id: int, index: int, stream: WorkloadStream | SutHttpStream,
                   operation: Callable[[], Awaitable[None]]) -> None:
        self._in_flight[index] += 1
        started = self._journal.elapsed()
        error: str | None = None
        try:
            await operation()
        except IntegrationError as exc:  # every typed error the integration documents
            error = type(exc).__name__
        except WorkloadError as exc:
            error = exc.code
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

        steps.append(_Step(fault.at, 1, len(steps), start, f"fault {fault_id} start"))
        if fault.for_ is not None and fault.at + fault.for_ < scenario.duration:
            steps.append(_Step(round(fault.at + fault.for_, 6), 0, len(steps), stop, f"fault {fault_id} stop"))
    for i, step in enumerate(scenario.steps):

        def take(step_id: str = f"s{i + 1}", step: Step = step) -> Awaitable[None]:
            return operator.run(step_id, step)

        steps.append(_Step(step.at, 2, len(steps), take, f"step s{i + 1} {step.label()}", isinstance(step, Manual)))
    for i, stream in enumerate(scenario.workload):
        launch = workload.launcher(i, stream)
        for t in arrivals(stream, scenario.duration, sources.stream(f"workload.{i}.arrivals")):
            steps.append(_Step(t, 3, len(steps), launch))
    steps.sort()
    return steps


#: Wall seconds the lab gives itself, after an interrupt, to stop faults and cancel in-flight operations.
CLEANUP_WALL_S = 10.0


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _Interrupt:
    """Turn SIGINT and SIGTERM into a cancellation of the running scenario (the first one; later ones are
    ignored while the lab stops its faults), remembering which signal it was."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @contextmanager
    def installed(self) -> Iterator[_Interrupt]:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        installed: list[tuple[signal.Signals, _Handler]] = []
        if task is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(sig)
                try:
                    loop.add_signal_handler(sig, self._fire, sig, task)
                except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
                    continue
                installed.append((sig, previous))
        try:
            yield self
        finally:
            for sig, previous in installed:
                loop.remove_signal_handler(sig)
                with suppress(ValueError, TypeError):
                    signal.signal(sig, previous)

    def _fire(self, sig: signal.Signals, task: asyncio.Task[object]) -> None:
        if self.signal is None:
            self.signal = sig.name
            task.cancel(f"ehrlab: {sig.name}")

    def caught(self) -> bool:
        """In `except CancelledError`: True when it was this interrupt (the cancellation is then consumed, so
        the cleanup can await); False for any other cancellation, which must propagate."""
        task = asyncio.current_task()
        if self.signal is None or task is None:
            return False
        task.uncancel()
        return True


async def run_scenario_async(scenario: Scenario, *, file: Path, mode: Mode, seed: int, clock: Clock,
                             hooks: RunHooks | None = None, gameday: bool = False,
                             handle_signals: bool = False, allow_remote: bool = False) -> ScenarioRun:
    """Run one scenario to its verdict. `handle_signals` (the CLI in real mode): SIGINT/SIGTERM abort the
    scenario, keeping its journal (verdict "aborted"), instead of raising out of it."""
    hooks = hooks or RunHooks()
    sources = RandomSource(seed)
    real_clock = clock if mode == "real" and isinstance(clock, RealClock) else None
    # real mode: every event carries the wall time (scale 1: the operator's clock, not the scaled one)
    journal = Journal(clock, wall_clock=RealClock() if real_clock is not None else None)
    journal.subscribe(hooks.event)
    lab = Lab(mode=mode, clock=clock, sources=sources, vendors=scenario.vendors(),
              patients=scenario.setup.patients, listener=journal_listener(journal), sync=scenario.setup.sync,
              resilience=tuple(scenario.setup.resilience), failover=scenario.setup.failover,
              allow_remote=allow_remote, sut=scenario.sut, seed=seed)
    interrupt = _Interrupt()
    run = ScenarioRun(scenario=scenario, file=file, mode=mode, seed=seed, journal=journal, checks=[], started=False)
    monitor: LatenessMonitor | None = None
    completed = False
    with interrupt.installed() if handle_signals else _no_signals(interrupt):
        try:
            async with lab:
                journal.restart()
                hooks.scenario_started(scenario, mode, seed)
                journal.add(ScenarioStarted(t=0.0, scenario=scenario.name, file=file.as_posix(), seed=seed,
                                            mode=mode, duration_s=scenario.duration))
                run.started = True
                driver = FaultDriver(lab, journal)
                workload = _Workload(lab, journal, sources)
                operator = StepDriver(lab, journal, sources, gameday=gameday)
                if real_clock is not None:
                    monitor = LatenessMonitor(real_clock, journal, tolerance_s=scenario.lab.max_lateness)
                    monitor.start()
                cancelled = 0
                try:
                    await _play(scenario, sources, clock, journal, driver, workload, operator, monitor)
                    await driver.stop_all()
                    cancelled = await workload.drain(clock, scenario.drain)
                    if lab.pipeline is not None:
                        for scan in lab.pipeline.phi_scan(lab.vendor("medplum")):
                            journal.add(scan.model_copy(update={"t": journal.elapsed()}))
                    for seen in await vendor_requests({n: v.admin for n, v in lab.vendors.items()}, clock, journal):
                        journal.add(seen)  # what the vendors saw, at its arrival time (harness.vendor_requests)
                    completed = True
                except LabError as exc:  # a fault or step the lab could not carry out: it cannot judge
                    run.inconclusive = str(exc)
                except asyncio.CancelledError:
                    if not interrupt.caught():
                        raise
                finally:
                    if monitor is not None:
                        await monitor.stop()
                    if not completed:
                        cancelled = await _stop_everything(clock, driver, workload, run)
                if monitor is not None:
                    journal.add(monitor.timing_event())
                _journal_outcome(journal, run, interrupt)
                journal.add(ScenarioEnded(t=journal.elapsed(), scenario=scenario.name, operations=workload.count,
                                          in_flight_cancelled=cancelled))
        except LabError as exc:  # the lab could not be built (a simulator or proxy would not start)
            run.inconclusive = run.inconclusive or (str(exc) if run.started else f"the lab could not be built: {exc}")
        except asyncio.CancelledError:
            if not interrupt.caught():
                raise
        run.aborted = interrupt.signal
    run.sut_log = lab.sut_log
    if not run.started:
        if run.inconclusive is not None:  # keep the reason in a journal of its own
            journal.add(ScenarioStarted(t=0.0, scenario=scenario.name, file=file.as_posix(), seed=seed, mode=mode,
                                        duration_s=scenario.duration))
            run.started = True
            _journal_outcome(journal, run, interrupt)
            journal.add(ScenarioEnded(t=journal.elapsed(), scenario=scenario.name, operations=0,
                                      in_flight_cancelled=0))
        hooks.scenario_finished(run)
        return run
    if completed:
        run.checks = evaluate_all(scenario.expectations, journal.events, scenario.runbook[0])
        t_end = journal.elapsed() if mode == "real" else journal.events[-1].t
        for check in run.checks:
            cls = CheckPassed if check.passed else CheckFailed
            journal.add(cls(t=t_end, check=check.name, observed=check.observed, threshold=check.threshold))
        if monitor is not None and monitor.exceeded and run.aborted is None:
            run.inconclusive = _late_reason(monitor, run.checks)
            journal.add(LabInconclusive(t=t_end, reason=run.inconclusive))
    hooks.scenario_finished(run)
    return run


@contextmanager
def _no_signals(interrupt: _Interrupt) -> Iterator[_Interrupt]:
    yield interrupt


async def _play(scenario: Scenario, sources: RandomSource, clock: Clock, journal: Journal, driver: FaultDriver,
                workload: _Workload, operator: StepDriver, monitor: LatenessMonitor | None) -> None:
    """Play the timeline to the scenario's end; in real mode, measure how late each fault switch and step lands."""
    for step in _timeline(scenario, sources, driver, workload, operator):
        # paused_s: how long manual steps waited for the operator (a game day); always 0 otherwise
        planned = step.t + operator.paused_s
        await clock.sleep(planned - journal.elapsed())
        if monitor is None or not step.what:
            await step.action()
            continue
        began = journal.elapsed()
        driver.landed_at = None
        await step.action()
        fault = step.what.startswith("fault")
        done = driver.landed_at if fault and driver.landed_at is not None else journal.elapsed()  # as journaled
        monitor.landed("fault" if fault else "step", step.what, planned=planned, began=began, done=done,
                       judge_start=step.manual)
    await clock.sleep(scenario.duration + operator.paused_s - journal.elapsed())


async def _stop_everything(clock: Clock, driver: FaultDriver, workload: _Workload, run: ScenarioRun) -> int:
    """After an interrupt or a lab failure: stop every active fault and cancel in-flight operations, within
    CLEANUP_WALL_S of wall time. Returns how many operations were cancelled."""
    scale = clock.scale if isinstance(clock, RealClock) else 1.0
    try:
        async with clock.timeout(CLEANUP_WALL_S * scale):
            await driver.stop_all()
    except LabError as exc:
        run.inconclusive = run.inconclusive or str(exc)
    except TimeoutError:
        run.inconclusive = run.inconclusive or f"faults still active after {CLEANUP_WALL_S:g} s: " + ", ".join(
            sorted(driver.active))
    return await workload.drain(clock, 0.0)


def _journal_outcome(journal: Journal, run: ScenarioRun, interrupt: _Interrupt) -> None:
    if interrupt.signal is not None:
        journal.add(LabAborted(t=journal.elapsed(), signal=interrupt.signal))
    elif run.inconclusive is not None:
        journal.add(LabInconclusive(t=journal.elapsed(), reason=run.inconclusive))


def _late_reason(monitor: LatenessMonitor, checks: list[CheckResult]) -> str:
    reason = monitor.reason() or ""
    failing = [c.name for c in checks if not c.passed]
    if failing:
        reason += (f"; {len(failing)} check(s) failed while it was late, which may be the lab's doing, not the "
                   f"system's: {', '.join(failing)}")
    else:
        reason += "; every check passed, but on a timeline the lab did not keep"
    return reason


def summarize(run: ScenarioRun, sha256: str | None = None) -> ScenarioSummary:
    """The run's entry in summary.json (`ehrlab run`, the pytest plugin)."""
    operations = run.journal.of(OperationEvent)
    return ScenarioSummary(
        name=run.scenario.name, file=run.file.as_posix(), description=run.scenario.description,
        runbook=run.scenario.runbook, verdict=run.verdict, reason=run.reason, duration_s=run.scenario.duration,
        operations=len(operations), operations_failed=sum(1 for o in operations if not o.ok), checks=run.checks,
        sha256=sha256, seed=run.seed, wall_s=run.wall_s)


def run_scenario(scenario: Scenario, *, file: Path, mode: Mode, seed: int, time_scale: float = 1.0,
                 hooks: RunHooks | None = None, gameday: bool = False, handle_signals: bool = False,
                 allow_remote: bool = False) -> ScenarioRun:
    """Run one scenario to its verdict, on a virtual loop or on the real clock. `gameday`: manual steps wait
    for the operator at the console (else they are journaled as skipped). `handle_signals` (real mode): SIGINT
    and SIGTERM abort the scenario and return it with verdict "aborted" instead of raising."""
    # real-time: how long the run took on the wall, in either mode, for junit.xml's times (ScenarioSummary.wall_s);
    # it reaches summary.json and junit.xml only, never the journal
    wall = RealClock()
    began = wall.monotonic()
    if mode == "virtual":
        run = run_virtual(lambda: run_scenario_async(scenario, file=file, mode=mode, seed=seed,
                                                     clock=VirtualClock(), hooks=hooks, gameday=gameday))
    else:
        run = asyncio.run(run_scenario_async(scenario, file=file, mode=mode, seed=seed,
                                             clock=RealClock(scale=time_scale), hooks=hooks, gameday=gameday,
                                             handle_signals=handle_signals, allow_remote=allow_remote))
    run.wall_s = round(wall.monotonic() - began, 3)
    return run
