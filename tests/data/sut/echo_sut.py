"""A tiny system under test for `tests/e2e/test_sut.py` (stdlib only): listens on 127.0.0.1:$SUT_PORT, answers
GET /health with 200 and echoes POSTs (POST /fail answers 500). `--exit` prints a few lines and exits 3 at once;
`--never-ready` listens but answers /health with 503; `--ignore-term` ignores SIGTERM (the lab must SIGKILL it after
the grace). It records its pid, the environment variables it was given, the
request count and the headers it saw in $SUT_SCRATCH/seen.json, for the test to read."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEVER_READY = "--never-ready" in sys.argv
LOCK = threading.Lock()  # requests are served on threads
SEEN: dict[str, object] = {"env": sorted(os.environ), "medplum": os.environ.get("EHR_URL", ""), "posts": 0,
                           "auth": [], "pid": os.getpid()}


def save() -> None:
    """Atomically (a reader never sees half a file, even if the lab stops the SUT mid-write)."""
    path = os.path.join(os.environ["SUT_SCRATCH"], "seen.json")
    with open(f"{path}.{os.getpid()}.tmp", "w") as out:
        json.dump(SEEN, out)
    os.replace(out.name, path)


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's default listen backlog, 5, drops connections past ~300 requests/s
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(503 if NEVER_READY else 200, b'{"status": "ok"}')
        else:
            self._answer(404, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with LOCK:
            SEEN["posts"] = int(str(SEEN["posts"])) + 1
            auth = SEEN["auth"]
            assert isinstance(auth, list)
            auth.append(self.headers.get("Authorization", ""))
            save()
        self._answer(500 if self.path == "/fail" else 200, body)


def main() -> None:
    print(f"configured with secret={os.environ.get('SECRET', '')}", flush=True)  # as a careless service might
    if "--exit" in sys.argv:
        for i in range(15):
            print(f"starting step {i}", flush=True)
        print("fatal: no database configured", file=sys.stderr, flush=True)
        sys.exit(3)
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    save()
    server = Server(("127.0.0.1", int(os.environ["SUT_PORT"])), Handler)
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
