"""What the locustfiles share: targets from the environment, auth, and the lab's sampler.

Environment (printed by `ehrlab load`, or set by hand to point the locustfiles at anything):

    EHRLAB_FHIR_URL        a simulator's base URL (http://127.0.0.1:PORT)
    EHRLAB_FHIR_PATH       its FHIR base path (/fhir/R4)
    EHRLAB_TOKEN_PATH      its token path (/oauth2/token)
    EHRLAB_CLIENT_ID / EHRLAB_CLIENT_SECRET   client credentials (HTTP Basic, client_credentials grant); or
    EHRLAB_SEED (+ EHRLAB_VENDOR, default medplum)   the seed `ehrlab serve --seed N` was started with: the
                           credentials are derived from it as the lab derives them (docker-compose.yml)
    EHRLAB_PATIENT_IDS     comma list of patient ids seeded in the simulator; unset, each process looks
                           them up once (a `Patient?_count=50` search)
    EHRLAB_SERVICE_URL     the integration service's base URL
    EHRLAB_SERVICE_API_KEY / EHRLAB_SERVICE_ORG / EHRLAB_SERVICE_OPERATOR_TOKEN / EHRLAB_SERVICE_PATIENTS
    EHRLAB_SAMPLES         (optional) a JSONL file the master writes one stats sample to every second
    EHRLAB_STOP_FILE       (optional) when this file appears the run stops early (abort on a breached gate)

The sampler runs in the master (or the single local process): locust's aggregated stats plus the
count of 5xx answers, which workers report to the master with their stats (`report_to_master`).
Early stop is locust's maintainer pattern from locustio/locust#1789: `environment.runner.quit()`.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import gevent
from locust import events
from locust.runners import WorkerRunner

_server_errors = 0  # 5xx answers seen by this process (a worker: since its last report)
_started_at: float | None = None


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} is not set (ehrlab load sets it; see loadtests/common.py)")
    return value


def env_list(name: str) -> list[str]:
    return [item for item in os.environ.get(name, "").split(",") if item]


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


_derived: tuple[str, str] | None = None
_patients: list[str] = []


def credentials() -> tuple[str, str]:
    """(client id, secret): from EHRLAB_CLIENT_ID/SECRET, else derived from EHRLAB_SEED the way `ehrlab serve`
    derives them (`LabSecrets.generate` on the seed's `secrets.<vendor>` stream), once per process."""
    global _derived
    client_id, secret = os.environ.get("EHRLAB_CLIENT_ID", ""), os.environ.get("EHRLAB_CLIENT_SECRET", "")
    if client_id and secret:
        return client_id, secret
    if _derived is None:
        from harness.rng import RandomSource
        from harness.vendors import LabSecrets

        vendor = os.environ.get("EHRLAB_VENDOR", "medplum")
        lab = LabSecrets.generate(vendor, RandomSource(int(env("EHRLAB_SEED"))).stream(f"secrets.{vendor}"))
        _derived = (lab.client_id, lab.client_secret)
    return _derived


def patient_ids(client: Any, headers: dict[str, str], fhir: str) -> list[str]:
    """EHRLAB_PATIENT_IDS, else the simulator's patients, looked up once per process (`Patient?_count=50`)."""
    listed = env_list("EHRLAB_PATIENT_IDS")
    if listed:
        return listed
    if not _patients:
        with client.get(f"{fhir}/Patient?_count=50", headers=headers, name="Patient (lookup)",
                        catch_response=True) as response:
            if response.status_code == 200:
                _patients.extend(str(e["resource"]["id"]) for e in response.json().get("entry", [])
                                 if e.get("resource", {}).get("resourceType") == "Patient")
            else:
                response.failure(f"patient lookup: HTTP {response.status_code}")
    return list(_patients) or ["unknown"]


def fetch_token(client: Any) -> str:
    """A client_credentials token from the simulator (once per simulated user, in `on_start`)."""
    body = urlencode({"grant_type": "client_credentials"})
    headers = {"Authorization": basic_auth(*credentials()),
               "Content-Type": "application/x-www-form-urlencoded"}
    with client.post(env("EHRLAB_TOKEN_PATH", "/oauth2/token"), data=body, headers=headers, name="token",
                     catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"token: HTTP {response.status_code}")
            return ""
        return str(response.json()["access_token"])


def next_link(bundle: dict[str, Any]) -> str | None:
    """The path and query of a searchset's `next` link (followed on our own host: never somewhere else)."""
    for link in bundle.get("link", []):
        if link.get("relation") == "next":
            parts = urlsplit(str(link.get("url", "")))
            return parts.path + ("?" + parts.query if parts.query else "")
    return None


@events.request.add_listener
def _count_server_errors(response: Any = None, **_: Any) -> None:
    global _server_errors
    status = getattr(response, "status_code", 0) or 0
    if 500 <= status <= 599:
        _server_errors += 1


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any]) -> None:
    global _server_errors
    data["ehrlab_5xx"] = _server_errors
    _server_errors = 0


@events.worker_report.add_listener
def _collect(client_id: str, data: dict[str, Any]) -> None:
    global _server_errors
    _server_errors += int(data.get("ehrlab_5xx", 0))


def _sample(environment: Any, final: bool = False) -> dict[str, Any]:
    total = environment.stats.total
    runner = environment.runner
    return {
        "t": round(time.monotonic() - (_started_at or time.monotonic()), 3),
        "final": final,
        "users": runner.user_count if runner is not None else 0,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "server_errors": _server_errors,
        "avg_ms": total.avg_response_time,
        "p95_ms": total.get_response_time_percentile(0.95) if total.num_requests else None,
        "p95_window_ms": total.get_current_response_time_percentile(0.95),
        "rps": total.total_rps,
    }


def _write(path: str, sample: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(sample) + "\n")


def _sampler(environment: Any, path: str | None, stop_file: str | None) -> None:
    while True:
        gevent.sleep(1.0)
        if _started_at is None:
            continue
        if path:
            _write(path, _sample(environment))
        if stop_file and os.path.exists(stop_file) and environment.runner is not None:
            environment.runner.quit()
            return


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    global _started_at
    if _started_at is None:
        _started_at = time.monotonic()


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    gevent.spawn(_sampler, environment, os.environ.get("EHRLAB_SAMPLES"), os.environ.get("EHRLAB_STOP_FILE"))


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    path = os.environ.get("EHRLAB_SAMPLES")
    if path and not isinstance(environment.runner, WorkerRunner):
        _write(path, _sample(environment, final=True))
