"""The locustfiles against a simulator someone else started (`ehrlab serve medplum --seed N`, as the compose
file's locust master and workers meet theirs): given only the seed and the URL, they derive the client's
credentials as the lab does and look the patients up themselves. locust runs in its own process."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import default_sigint

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.real_network, pytest.mark.slow]


@pytest.mark.parametrize("seed", ["5"])
def test_locustfile_needs_only_the_seed_and_the_url(tmp_path: Path, seed: str) -> None:
    serve = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "medplum", "--seed", seed,
                              "--patients", "4"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=default_sigint)
    try:
        assert serve.stdout is not None
        text = ""
        for line in serve.stdout:
            text += line
            if "admin token" in line:
                break
        found = re.search(r"base URL\s+(http://127\.0\.0\.1:\d+)", text)
        assert found, text
        env = {key: value for key, value in os.environ.items()
               if key not in ("EHRLAB_CLIENT_ID", "EHRLAB_CLIENT_SECRET", "EHRLAB_PATIENT_IDS")}
        env |= {"EHRLAB_SEED": seed, "EHRLAB_FHIR_URL": found.group(1), "PYTHONPATH": str(REPO)}
        # --stop-timeout: at the end of -t a user finishes what it is doing (on a busy machine the first token
        # request may still be in flight after 4 s; killed there, it left no "token" row at all)
        locust = subprocess.run([sys.executable, "-m", "locust", "-f", "loadtests/clinician_read.py", "--headless",
                                 "-u", "2", "-r", "2", "-t", "4s", "--stop-timeout", "30", "--csv",
                                 str(tmp_path / "run"), "--only-summary"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False)
        with (tmp_path / "run_stats.csv").open(encoding="utf-8") as stats:
            rows = {row["Name"]: row for row in csv.DictReader(stats)}
        assert rows["token"]["Failure Count"] == "0", locust.stderr[-2000:]
        assert int(rows["Patient (lookup)"]["Request Count"]) >= 1
        assert int(rows["Patient/[id]"]["Request Count"]) > 0
        assert rows["Aggregated"]["Failure Count"] == "0", locust.stderr[-2000:]
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.communicate()
