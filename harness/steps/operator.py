"""The operator at the console during a game day: a `manual` step prints its instruction and waits for Enter.

stdin is read by one daemon thread per stream, not `asyncio.to_thread`: a read that outlives its step (the
step timed out) must not keep the event loop's executor from shutting down at the end of the run. Lines
are handed to the waiting step through `call_soon_threadsafe`. On a terminal, an Enter pressed while no
step was waiting is dropped when the next prompt appears (a stray key must not confirm a step nobody has
read yet); from a pipe (`yes | ehrlab run ...`, a test's `input=`), every line confirms the next prompt.

The wait is bounded by the step's `timeout` on the lab's clock (`Clock.timeout`): scenario seconds, so a
game-day rehearsal at `--time-scale 20` waits 30 s of wall time for a 10-minute timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal, TextIO

from harness.journal.base import stamp
from integrations.clock import Clock

#: Set while a prompt waits for the operator: a live progress display holds still, not to overwrite it.
PROMPT_ACTIVE = threading.Event()

Outcome = Literal["confirmed", "timed_out", "no_input"]


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    waited_s: float

    @property
    def confirmed(self) -> bool:
        return self.outcome == "confirmed"


class _LineReader:
    """Lines of one input stream, read by a daemon thread started at the first wait."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._lines: deque[str] = deque()
        self._eof = False
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[str | None]] | None = None
        self._thread: threading.Thread | None = None
        try:
            self._drop_stale = stream.isatty()
        except (ValueError, OSError):
            self._drop_stale = False

    def _read(self) -> None:
        while True:
            try:
                line: str | None = self._stream.readline()
            except (OSError, ValueError):
                line = ""
            if line == "":
                line = None
            with self._lock:
                if line is None:
                    self._eof = True
                waiter, self._waiter = self._waiter, None
                if waiter is None and line is not None:
                    self._lines.append(line)
            if waiter is not None:
                loop, future = waiter
                with contextlib.suppress(RuntimeError):  # the run's loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_resolve, future, line)
            if line is None:
                return

    async def next_line(self) -> str | None:
        """The next line the operator enters; None when the stream is closed (no operator can answer)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        with self._lock:
            if self._drop_stale:
                self._lines.clear()
            if self._lines:
                return self._lines.popleft()
            if self._eof:
                return None
            self._waiter = (loop, future)
            if self._thread is None:
                self._thread = threading.Thread(target=self._read, name="ehrlab-operator-stdin", daemon=True)
                self._thread.start()
        try:
            return await future
        finally:
            with self._lock:
                if self._waiter is not None and self._waiter[1] is future:
                    self._waiter = None


def _resolve(future: asyncio.Future[str | None], line: str | None) -> None:
    if not future.done():
        future.set_result(line)


_READERS: dict[int, _LineReader] = {}
_READERS_LOCK = threading.Lock()


def _reader_for(stream: TextIO) -> _LineReader:
    with _READERS_LOCK:
        reader = _READERS.get(id(stream))
        if reader is None or reader._stream is not stream:
            reader = _READERS[id(stream)] = _LineReader(stream)
        return reader


class OperatorConsole:
    """Prompts on `out` (stderr), answers from `stdin`; both default to the process's own."""

    def __init__(self, stdin: TextIO | None = None, out: TextIO | None = None) -> None:
        self._stdin = stdin if stdin is not None else sys.stdin
        self._out = out if out is not None else sys.stderr

    def _say(self, text: str) -> None:
        clear = "\r\x1b[K" if _isatty(self._out) else ""  # wipe a progress line first
        print(f"{clear}{text}", file=self._out, flush=True)

    async def ask(self, step_id: str, vendor: str, instruction: str, wait_s: float, clock: Clock) -> Answer:
        """Print the instruction and wait for Enter, at most `wait_s` scenario seconds on `clock`."""
        started = clock.monotonic()
        PROMPT_ACTIVE.set()
        try:
            self._say(f"\n>>> MANUAL STEP {step_id} ({vendor}): {instruction}\n"
                      f">>> press Enter when done (the timeline is paused; it goes on by itself after "
                      f"{wait_s:g} s of scenario time)")
            outcome: Outcome
            try:
                async with clock.timeout(wait_s):
                    line = await _reader_for(self._stdin).next_line()
                outcome = "confirmed" if line is not None else "no_input"
            except TimeoutError:
                outcome = "timed_out"
        finally:
            PROMPT_ACTIVE.clear()
        waited = stamp(clock.monotonic() - started)
        message = {"confirmed": f"confirmed by the operator after {waited:.1f} s",
                   "timed_out": f"NOT confirmed: timed out after {waited:.1f} s, going on",
                   "no_input": "NOT confirmed: stdin is closed, nobody can press Enter; going on"}[outcome]
        self._say(f">>> {step_id} {message}")
        return Answer(outcome, waited)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False
