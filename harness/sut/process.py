"""Start, wait for and stop an external system under test (real mode only; `harness.sut.model`).

`start_sut` runs inside the lab's exit stack, after the simulators and proxies are up (the SUT's environment
refers to them): it picks a free loopback port for `{port}`, starts `sut.command` (argv, no shell) with the
templated environment plus the lab's PATH, its stdout and stderr in `<scratch>/sut.log`, and polls
`GET <url><ready.path>` until a 2xx. A process that exits first, or no 2xx within `ready.within`, is a
`LabError` (INCONCLUSIVE, exit 3) naming the cause and the log's last lines. On the way out (the end of the run,
an abort, a failure) the process gets `stop.signal`, `stop.grace` seconds, then SIGKILL; it runs in a session of
its own, so the signals reach its children too and a Ctrl-C at the terminal reaches the lab, not the SUT.
A SUT given by `url:` alone is attached to: only its readiness is waited for, and it is never stopped.

Time: the readiness deadline and the stop grace run on the lab's clock, which is the wall at scale 1 (a scenario
with `sut:` refuses `--time-scale`, `refuse_for_run`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from collections.abc import Iterable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness import guard
from harness.errors import LabError, UsageError
from harness.sut.model import PORT, SutHttpStream, SutSettings
from harness.sut.template import render
from integrations.clock import Clock

#: Lines of the SUT's log quoted in an INCONCLUSIVE reason.
LOG_TAIL_LINES = 10
#: Seconds between readiness probes.
POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class RunningSut:
    url: str  # where the workload sends its requests (no trailing slash)
    log: Path | None  # the process's stdout and stderr (None when attached)
    values: dict[str, str] = field(repr=False)  # the lab values templates may name (secrets included: never shown)


def refuse_for_run(scenarios: Iterable[tuple[Path, object]], *, mode: str, time_scale: float,
                   allow_remote: bool) -> None:
    """Before anything runs: a scenario with `sut:` needs real mode and time scale 1, and its URL must pass the
    loopback guard (UsageError, exit 2, one line)."""
    for file, scenario in scenarios:
        sut: SutSettings | None = getattr(scenario, "sut", None)
        if sut is None:
            continue
        if mode != "real":
            raise UsageError(f"{file.as_posix()}: its sut: section needs --mode real (an external system under test "
                             "runs on real sockets and the real clock); nothing was run")
        if time_scale != 1.0:
            raise UsageError(f"{file.as_posix()}: its sut: section needs --time-scale 1 (the system under test "
                             f"keeps wall time, not the lab's x{time_scale:g}); nothing was run")
        check_url(sut, allow_remote=allow_remote)
        for stream in getattr(scenario, "workload", []):
            for name in stream.env_names() if isinstance(stream, SutHttpStream) else []:
                if name not in os.environ:
                    raise UsageError(f"{file.as_posix()}: a sut_http header reads {{env.{name}}}, but {name} is "
                                     "not set in the environment; nothing was run")


def check_url(sut: SutSettings, *, allow_remote: bool) -> None:
    guard.check_target("sut.url", sut.url.replace("{" + PORT + "}", "1"), allow_remote=allow_remote)


def free_port() -> int:
    """A loopback port free now (the OS's pick; another process could take it before the SUT binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _mask_log(log: Path, secrets: tuple[str, ...]) -> None:
    """Once the SUT has stopped: its log with the lab's secrets masked, so no copy of it carries them."""
    with suppress(OSError):
        text = log.read_text(errors="replace")
        masked = _mask(text, secrets)
        if masked != text:
            log.write_text(masked)


def log_tail(log: Path, secrets: Iterable[str], lines: int = LOG_TAIL_LINES) -> str:
    """The log's last lines, joined by ' | ', with the lab's secrets masked."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    text = _mask(text, secrets)
    tail = [line[:200] for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(empty log)"


async def start_sut(stack: AsyncExitStack, sut: SutSettings, *, values: dict[str, str], scratch: Path,
                    clock: Clock, secrets: tuple[str, ...], allow_remote: bool) -> RunningSut:
    """Start (or attach to) the SUT and wait until it is ready; its stop is pushed on `stack`."""
    check_url(sut, allow_remote=allow_remote)
    values = dict(values)
    if sut.command is None:
        url = sut.url.rstrip("/")
        values["sut.url"], values["sut.port"] = url, str(httpx.URL(url).port or "")
        await _wait_ready(url, sut, clock, process=None, log=None, secrets=secrets)
        return RunningSut(url=url, log=None, values=values)
    port = free_port()
    url = render(sut.url, {PORT: str(port)}).rstrip("/")
    values["sut.port"], values["sut.url"] = str(port), url
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    env.update({name: render(value, values) for name, value in sut.env.items()})
    log = scratch / "sut.log"
    with log.open("wb") as out:
        try:
            process = await asyncio.create_subprocess_exec(
                *sut.command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise LabError(f"the system under test could not be started ({sut.command[0]}): "
                           f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    stack.callback(_mask_log, log, secrets)  # after the stop (a stack unwinds last-in first-out)
    stack.push_async_callback(_stop, process, sut, clock)
    await _wait_ready(url, sut, clock, process=process, log=log, secrets=secrets)
    return RunningSut(url=url, log=log, values=values)


async def _wait_ready(url: str, sut: SutSettings, clock: Clock, *, process: asyncio.subprocess.Process | None,
                      log: Path | None, secrets: tuple[str, ...]) -> None:
    deadline = clock.monotonic() + sut.ready.within
    last = "no answer yet"
    async with httpx.AsyncClient(trust_env=False) as client:
        while True:
            if process is not None and process.returncode is not None:
                raise LabError(f"the system under test exited with code {process.returncode} before it was ready; "
                               f"last lines of {log}: {log_tail(log, secrets) if log else ''}")
            try:
                # one probe may not outlast the deadline by more than a poll: a health endpoint that hangs is not ready
                wait = max(POLL_S, min(2.0, deadline - clock.monotonic()))
                response = await client.get(url + sut.ready.path, timeout=wait)
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if clock.monotonic() >= deadline:
                tail = f"; last lines of {log}: {log_tail(log, secrets)}" if log is not None else ""
                raise LabError(f"the system under test was not ready within {sut.ready.within:g} s: GET "
                               f"{sut.ready.path} never answered 2xx (last: {last}){tail}")
            await clock.sleep(POLL_S)


async def _stop(process: asyncio.subprocess.Process, sut: SutSettings, clock: Clock) -> None:
    """stop.signal to the SUT's process group, stop.grace seconds, then SIGKILL; always reaped."""
    if process.returncode is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, getattr(signal, sut.stop.signal))
        try:
            async with clock.timeout(sut.stop.grace):
                await asyncio.shield(process.wait())
        except TimeoutError:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # its group: still ours, the leader is not reaped yet
    await process.wait()


def copy_sut_logs(report: Path, logs: Iterable[tuple[str, Path | None]]) -> None:
    """Copy each started SUT's log into the report directory, as `sut-<scenario>.log` (best effort: a log that
    cannot be read is left where it is, its path in the INCONCLUSIVE reason)."""
    for scenario, log in logs:
        if log is None or not log.is_file():
            continue
        with suppress(OSError):
            shutil.copyfile(log, report / f"sut-{scenario}.log")
