"""No secret, token or patient detail reaches the journal or any report file.

The lab derives its credentials and synthetic patients from the seed, so this test rebuilds exactly
the values the run used and looks for each of them in every file the run wrote.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.clock import VirtualClock, run_virtual
from harness.rng import RandomSource
from harness.vendors import VENDORS, LabSecrets, SimulatorHandle
from tests.e2e.helpers import REPO, ehrlab

SEED = 21


def test_reports_hold_no_secrets_tokens_or_phi(tmp_path: Path) -> None:
    result = ehrlab("run", "scenarios/medplum-outage.yaml", "--seed", str(SEED), report_dir=tmp_path)
    assert result.code == 0, result.stderr
    assert result.report is not None
    written = {p.relative_to(result.report).as_posix(): p.read_text(encoding="utf-8")
               for p in sorted(result.report.rglob("*")) if p.is_file()}
    assert {"summary.json", "journal.jsonl", "junit.xml", "summary.md", "report.html", "incident.md",
            "allure-results/environment.properties"} <= set(written)
    assert any(name.endswith("-result.json") for name in written)
    everything = "\n".join([*written.values(), result.stdout, result.stderr])

    sources = RandomSource(SEED)
    secrets = LabSecrets.generate("medplum", sources.stream("secrets.medplum"))

    async def build() -> SimulatorHandle:
        simulator = VENDORS["medplum"].simulator(VirtualClock(), sources.stream("simulator.medplum"), secrets)
        simulator.seed_patients(25)  # the scenario's setup.patients: the same patients the run had
        return simulator

    simulator = run_virtual(build)
    store = simulator.store  # type: ignore[attr-defined]
    patients = [store.read("Patient", pid) for pid in _ids(written["journal.jsonl"])]
    assert patients, "the journal names no patient id at all"

    assert secrets.client_secret not in everything
    assert secrets.admin_token not in everything
    for patient in patients:
        name = patient["name"][0]
        assert name["family"] not in everything
        assert patient["birthDate"] not in everything
    # The one 64-hex value a report may hold: the scenario file's own SHA-256 (for `ehrlab replay`), public.
    file_digest = hashlib.sha256((REPO / "scenarios" / "medplum-outage.yaml").read_bytes()).hexdigest()
    tokens = set(re.findall(r"\b[0-9a-f]{64}\b", everything)) - {file_digest}
    assert not tokens, "something shaped like an access token was written"
    assert "Bearer " not in everything
    assert "?_id=" not in everything  # query strings can carry identifiers: paths only


def _ids(journal: str) -> list[str]:
    return sorted(set(re.findall(r'"/fhir/R4/Patient/([0-9a-f-]{36})"', journal)))[:10]
