"""Orderly shutdown of the long-running commands (`serve`, `service`, the load launcher): SIGTERM as Ctrl-C.

`asyncio.run` turns Ctrl-C into a cancellation of its main task: every `async with` and `finally` unwinds (the
servers stop, temporary folders are removed, faults are stopped), then `KeyboardInterrupt` is raised. SIGTERM
(`kill`, `docker stop`, a CI runner's timeout) would end the process at once, leaving those behind.
`run_until_stopped` gives SIGTERM the same unwinding: its handler, installed on the loop, cancels the main task
once (a second SIGTERM during the shutdown is ignored; SIGKILL remains for a shutdown that hangs).

`ehrlab run --mode real` has its own handlers (`harness.runner`), which also keep the aborted run's journal.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any


async def _main_cancelled_by_sigterm(main: Coroutine[Any, Any, None], stopped: list[str]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def cancel() -> None:
        if not stopped and task is not None:
            stopped.append(signal.SIGTERM.name)
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, cancel)
        installed = True
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
        installed = False
    try:
        await main
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def run_until_stopped(main: Coroutine[Any, Any, None]) -> str | None:
    """`asyncio.run(main)`, stopped in order by Ctrl-C or SIGTERM: returns the signal's name ("SIGINT",
    "SIGTERM"), or None when `main` returned by itself. Its own errors propagate."""
    stopped: list[str] = []
    try:
        asyncio.run(_main_cancelled_by_sigterm(main, stopped))
    except KeyboardInterrupt:
        return signal.SIGINT.name
    except asyncio.CancelledError:
        if not stopped:
            raise
        return stopped[0]
    return None
