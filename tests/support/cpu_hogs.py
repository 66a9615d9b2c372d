"""CPU-bound processes beside the tests, to show that real-mode tests hold on a loaded machine: they pass, or
come out INCONCLUSIVE with the lab's measured lateness, never FAIL for the lab's own lateness.

Each hog is a plain Python busy loop in its own process, bounded twice: it ends by itself after `seconds`, and
as soon as the process that started it is gone (its parent id changes), so a killed test session leaves none
behind. `CpuHogs.stop()` kills them at teardown.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

#: `EHRLAB_TEST_CPU_HOGS=2 make test`: two busy processes beside the whole suite (tests/conftest.py).
ENV = "EHRLAB_TEST_CPU_HOGS"
#: How long the suite-wide hogs may live at most (seconds), `EHRLAB_TEST_CPU_HOGS_S`; a fixture's hogs: 120 s.
ENV_SECONDS = "EHRLAB_TEST_CPU_HOGS_S"

_HOG = """
import os, sys, time
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(200_000):
        pass
"""


@dataclass
class CpuHogs:
    count: int
    seconds: float
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> CpuHogs:
        for _ in range(self.count):
            self.processes.append(subprocess.Popen([sys.executable, "-c", _HOG, str(self.seconds)],
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
        return self

    def running(self) -> int:
        return sum(1 for p in self.processes if p.poll() is None)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes.clear()


def from_environment(environ: dict[str, str] | None = None) -> CpuHogs | None:
    """The suite-wide hogs `EHRLAB_TEST_CPU_HOGS=N` asks for (not started), or None."""
    env = os.environ if environ is None else environ
    count = int(env.get(ENV, "0") or "0")
    if count <= 0:
        return None
    return CpuHogs(count=count, seconds=float(env.get(ENV_SECONDS, "3600")))
