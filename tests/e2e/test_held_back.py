"""The held-back check: scenarios written by someone else, from the runbooks and the README's format
reference only (never the lab's code), run without code changes. tests/data/held_back/ holds two, written
that way: a Cerner outage (runbook 000 §2, 004) and a Medplum maintenance with a consent revocation (002 §7.3,
§3). Writing the second found a real defect, since fixed: reconciliation re-queued a revoked patient's
records and every one became a counted consent denial, paging 002 §8.4's P1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import REPO, ehrlab

HELD_BACK = REPO / "tests" / "data" / "held_back"


def test_held_back_scenarios_validate_and_pass(tmp_path: Path) -> None:
    files = sorted(HELD_BACK.glob("*.yaml"))
    assert len(files) >= 2
    validate = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(HELD_BACK)], cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
    assert validate.returncode == 0, validate.stderr
    result = ehrlab("run", str(HELD_BACK), "--quiet", report_dir=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    for file in files:
        assert file.stem in result.stdout
    summary = result.summary()
    seeds = {s["name"]: s["seed"] for s in summary["scenarios"]}
    assert seeds == {"cerner-outage-recovery": 7, "maintenance-with-consent-revocation": 11}  # each its own seed
