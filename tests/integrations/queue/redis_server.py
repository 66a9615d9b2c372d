"""A throwaway `redis-server` for the queue's tests and benchmark: its own process on a free loopback port,
its data (AOF) in a temporary directory, stopped and restarted at will. Not a system service.

Without the binary the Redis tests skip, unless `EHRLAB_REQUIRE_REDIS=1` (CI sets it in `.ci/run`, which
installs the Debian package) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REQUIRE_ENV = "EHRLAB_REQUIRE_REDIS"
START_TIMEOUT_S = 10.0


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def redis_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def missing_reason() -> str:
    return ("redis-server is not on PATH (install it: apt-get install -y redis-server); "
            f"{REQUIRE_ENV}=1 turns this skip into a failure")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """`redis-server --save '' --appendonly yes` in `directory`, on a free port that survives restarts."""

    def __init__(self, directory: Path, *, appendfsync: str = "everysec") -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(missing_reason())
        self.binary = binary
        self.directory = directory
        self.appendfsync = appendfsync
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", self.appendfsync, "--dir", str(self.directory), "--daemonize", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.01)  # real process start-up

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, sig: signal.Signals = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
