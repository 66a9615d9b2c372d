"""Every failure attributed (issue 13): a run journals each failed operation under the integration's own
typed error name; `Unexpected<Name>` is left for a genuine untyped exception (a bug in the system under test).

- `FailoverExhausted` (integrations/systems) is an `IntegrationError`: journaled as itself.
- Epic's token endpoint answering 503 (a scoped simulator outage, as a scenario writes it) fails reads with
  `ServerError`, not `AuthError`: runbook 000_030ea53f0735abf7.txt §4 says "check Epic status" for a 5xx,
  "rotate credentials" only for a 401; `token.failed` keeps the status.
- Only an exception outside the tree is `Unexpected*`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.journal import OperationEvent, RetryEvent, TokenFailedEvent
from harness.runner import ScenarioRun, run_scenario
from harness.scenario import load_scenario
from harness.workload import operations
from integrations.errors import IntegrationError

FAILOVER = """\
name: failover-exhausted
description: Epic and Cerner both down; reads with failover have nowhere to go.
runbook: ["004_bc3882054056792c.txt (Connection Management: automatic failover)"]
duration: 3m
setup:
  patients: 3
  failover: {primary: epic, fallbacks: [cerner], patients: 4}
workload:
  - {operation: read_patient_failover, vendor: epic, rate: 6/m}
faults:
  - {kind: outage, target: epic, at: 1m, for: 1m}
  - {kind: outage, target: cerner, at: 1m, for: 1m}
expectations:
  - check: events
    kind: failover.exhausted
    min: 1
"""

TOKEN_OUTAGE = """\
name: epic-token-endpoint-down
description: Epic's token endpoint answers 503 for two minutes; the FHIR API itself is up.
runbook: ["000_030ea53f0735abf7.txt §4 (500+: check Epic status)"]
duration: 4m
setup:
  patients: 3
workload:
  - {operation: read_patient, vendor: epic, rate: 6/m}
faults:
  - {kind: outage, target: epic, at: 1m, for: 2m, status: 503, scope: {path: /oauth2/token}}
steps:
  - {at: 1m, vendor: epic, action: expire_tokens}
expectations:
  - check: events
    kind: token.failed
    min: 1
"""


def run(tmp_path: Path, text: str, seed: int = 3) -> ScenarioRun:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return run_scenario(load_scenario(path), file=path, mode="virtual", seed=seed)


def errors(result: ScenarioRun) -> set[str]:
    return {op.error for op in result.journal.of(OperationEvent) if op.error is not None}


def test_failover_exhausted_is_journaled_under_its_own_name(tmp_path: Path) -> None:
    result = run(tmp_path, FAILOVER)
    assert "FailoverExhausted" in errors(result)
    assert not any(e.startswith("Unexpected") for e in errors(result)), errors(result)
    assert result.verdict == "pass", [c for c in result.checks if not c.passed]


def test_a_token_endpoint_503_fails_reads_as_server_error_not_auth_error(tmp_path: Path) -> None:
    result = run(tmp_path, TOKEN_OUTAGE)
    failed = errors(result)
    assert "ServerError" in failed
    assert not failed & {"AuthError", "CredentialsRejected"}, failed
    tokens = result.journal.of(TokenFailedEvent)
    assert tokens
    assert {(t.status, t.error) for t in tokens} == {(503, "ServerError")}
    # retried as a server error is (runbook 002 §2.1 backoff), not given up on as a refusal would be
    assert any(r.reason == "ServerError" for r in result.journal.of(RetryEvent))
    # a provider failure for the breaker (it opened: the vendor is down), unlike a refused credential
    assert "CircuitOpen" in failed
    recovered = [op for op in result.journal.of(OperationEvent) if op.started >= 210.0]  # half-open at ~203 s
    assert recovered
    assert all(op.ok for op in recovered)


def test_only_an_untyped_exception_is_unexpected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Typed(IntegrationError):
        pass

    raised: list[type[Exception]] = [Typed, KeyError]

    async def broken(ctx: operations.OperationContext) -> None:
        raise raised.pop(0)("boom") if raised else RuntimeError("boom")

    monkeypatch.setitem(operations.OPERATIONS, "read_patient", broken)
    result = run(tmp_path, TOKEN_OUTAGE.replace("rate: 6/m", "rate: 1/m"))
    names = [op.error for op in result.journal.of(OperationEvent)]
    assert names[:3] == ["Typed", "UnexpectedKeyError", "UnexpectedRuntimeError"]
