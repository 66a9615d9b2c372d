"""Run the `ehrlab` CLI in a separate process, as CI and users do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    report: Path | None

    def summary(self) -> Any:
        assert self.report is not None
        return json.loads((self.report / "summary.json").read_text())


def ehrlab(*args: str, report_dir: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args, "--report-dir", str(report_dir)],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    latest = report_dir / "latest"
    return Result(proc.returncode, proc.stdout, proc.stderr, latest.resolve() if latest.exists() else None)


def default_sigint() -> None:
    """`preexec_fn` for a child the test stops with SIGINT (Ctrl-C): a shell that starts the suite in the
    background has SIGINT ignored, and an ignored signal stays ignored across exec, so the child would never
    see the Ctrl-C and the test would hang instead of failing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
