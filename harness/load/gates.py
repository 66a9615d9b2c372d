"""Gates: SLA catalogue entries judged over locust's stats, at the end of a run and while it runs.

A gate is a catalogue rule (it fails when its `when` holds, as the alert would fire) or a numeric band
(it fails outside `healthy`) whose series has a locust equivalent:

| series                      | over locust's stats                                   |
|-----------------------------|-------------------------------------------------------|
| operation_latency_p95_ms    | 95th percentile response time of all requests (ms)    |
| operation_latency_avg_ms    | mean response time (ms)                               |
| request_5xx_ratio           | answers with a 5xx status / requests                  |
| operation_error_ratio       | failed requests (any failure, 4xx, 5xx, connection) / requests |
| operation_success_ratio     | 1 - the above                                         |

The verdict is over the whole run (what the test asserts, like k6 thresholds and Gatling assertions). A
run can also stop early (`AbortWatch`, k6's `abortOnFail` with `delayAbortEval`): after `delay_s`, once a
gate's value over the recent window (locust's rolling 10 s percentile; ratios over the last 10 s of
counts) has been breached continuously for `after_s`. Hand-written: locust-plugins' `--check-*` flags
judge only at the end, know nothing of the catalogue and cannot abort.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UsageError
from harness.sla import Catalogue, NumericBand, Rule
from harness.sla.conditions import Condition, format_value

DEFAULT_GATES = ("002-8.4-slow-api", "002-8.4-5xx-rate")
WINDOW_S = 10.0  # locust's CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW: ratios use the same window
RSS_GATE = "load-rss-growth"
METRICS: dict[str, str] = {
    "operation_latency_p95_ms": "p95_ms",
    "operation_latency_avg_ms": "avg_ms",
    "request_5xx_ratio": "server_error_ratio",
    "operation_error_ratio": "failure_ratio",
    "operation_success_ratio": "success_ratio",
}


@dataclass(frozen=True, slots=True)
class Gate:
    id: str
    title: str
    metric: str
    condition: Condition  # the condition the catalogue writes (a rule's `when`, a band's `healthy`)
    fails_when_holds: bool  # a rule fails when its condition holds; a band when `healthy` does not
    source: str
    for_s: float  # the catalogue's sustain period (a rule's `for`), the default abort delay

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return self.condition.holds(value) == self.fails_when_holds

    def describe(self) -> str:
        return f"{self.metric} {'' if self.fails_when_holds else 'not '}{self.condition.text} fails"


def catalogue_gates(catalogue: Catalogue, ids: Sequence[str]) -> list[Gate]:
    gates = []
    for gate_id in dict.fromkeys(ids):
        entry: Rule | NumericBand | None = catalogue.rule(gate_id)
        if entry is None:
            band = catalogue.band(gate_id)
            entry = band if isinstance(band, NumericBand) else None
        if entry is None or entry.series not in METRICS:
            usable = sorted([r.id for r in catalogue.rules if r.series in METRICS] +
                            [b.id for b in catalogue.bands if b.series in METRICS])
            raise UsageError(f"--gate {gate_id}: not a catalogue rule or band over locust's stats "
                             f"(usable: {', '.join(usable)})")
        if isinstance(entry, Rule):
            gates.append(Gate(entry.id, entry.title, METRICS[entry.series or ""], entry.condition, True,
                              entry.citation(), entry.for_))
        else:
            gates.append(Gate(entry.id, entry.title, METRICS[entry.series], entry.healthy_condition, False,
                              entry.citation(), 0.0))
    return gates


def rss_gate(max_growth_mb: float) -> Gate:
    return Gate(RSS_GATE, "Simulator memory growth over the run (VmRSS)", "rss_growth_mb",
                Condition(op=">", value=max_growth_mb, unit="count", text=f"> {max_growth_mb:g} MB"), True,
                "issue 8 (soak: no memory growth beyond a stated bound); 002_437ee203264dfa64.txt §8.4 memory", 0.0)


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of the locustfiles' samples (`loadtests.common`): cumulative counts since the start."""

    t: float
    requests: int
    failures: int
    server_errors: int
    avg_ms: float
    p95_ms: float | None
    p95_window_ms: float | None
    rps: float
    users: int = 0
    final: bool = False

    @classmethod
    def parse(cls, line: str) -> Sample:
        data: dict[str, Any] = json.loads(line)
        return cls(t=float(data["t"]), requests=int(data["requests"]), failures=int(data["failures"]),
                   server_errors=int(data["server_errors"]), avg_ms=float(data["avg_ms"] or 0.0),
                   p95_ms=_float(data.get("p95_ms")), p95_window_ms=_float(data.get("p95_window_ms")),
                   rps=float(data.get("rps") or 0.0), users=int(data.get("users") or 0),
                   final=bool(data.get("final")))

    def metrics(self) -> dict[str, float | None]:
        """The whole run so far."""
        return _ratios(self.requests, self.failures, self.server_errors) | {"p95_ms": self.p95_ms,
                                                                              "avg_ms": self.avg_ms}


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _ratios(requests: int, failures: int, server_errors: int) -> dict[str, float | None]:
    if requests <= 0:
        return {"server_error_ratio": None, "failure_ratio": None, "success_ratio": None}
    return {"server_error_ratio": server_errors / requests, "failure_ratio": failures / requests,
            "success_ratio": 1.0 - failures / requests}


@dataclass(frozen=True, slots=True)
class GateVerdict:
    id: str
    title: str
    passed: bool
    observed: float | None
    threshold: str
    message: str
    source: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "passed": self.passed, "observed": self.observed,
                "threshold": self.threshold, "message": self.message, "source": self.source}


def _unit_value(gate: Gate, value: float | None) -> str:
    if gate.metric == "rss_growth_mb":
        return "no data" if value is None else f"{value:.1f} MB"
    return format_value(value, gate.condition.unit)


def judge(gates: Iterable[Gate], final: Sample | None, extra: dict[str, float | None] | None = None,
          aborted: tuple[str, float] | None = None) -> list[GateVerdict]:
    """Each gate over the whole run; a run without a completed request fails every gate."""
    metrics = (final.metrics() if final is not None else {}) | (extra or {})
    verdicts = []
    for gate in gates:
        value = metrics.get(gate.metric)
        threshold = f"fails when {gate.metric} {'' if gate.fails_when_holds else 'not '}{gate.condition.text}"
        shown = _unit_value(gate, value)
        if gate.metric != "rss_growth_mb" and (final is None or final.requests == 0):
            passed, message = False, "no request completed: nothing to judge"
        elif value is None:
            passed, message = False, f"{gate.metric}: no data"
        elif gate.breached(value):
            passed, message = False, f"{gate.metric} = {shown}: {threshold}"
        else:
            passed, message = True, f"{gate.metric} = {shown} ({threshold})"
        if aborted is not None and aborted[0] == gate.id:
            passed = False
            message += f"; the run was aborted at {aborted[1]:.0f}s (breached over the window)"
        verdicts.append(GateVerdict(gate.id, gate.title, passed, value, threshold, message, gate.source))
    return verdicts


@dataclass
class AbortWatch:
    """k6's abortOnFail: the first gate breached continuously for `after_s` (after `delay_s`) stops the run."""

    gates: Sequence[Gate]
    after_s: float | None  # None: each gate's catalogue `for`
    delay_s: float = 5.0
    _history: deque[Sample] = field(default_factory=deque)
    _since: dict[str, float] = field(default_factory=dict)

    def window_metrics(self, sample: Sample) -> dict[str, float | None]:
        self._history.append(sample)
        while self._history and self._history[0].t < sample.t - WINDOW_S:
            self._history.popleft()
        first = self._history[0]
        ratios = _ratios(sample.requests - first.requests, sample.failures - first.failures,
                         sample.server_errors - first.server_errors)
        return ratios | {"p95_ms": sample.p95_window_ms, "avg_ms": sample.avg_ms}

    def feed(self, sample: Sample) -> Gate | None:
        """The gate that should abort the run now, if any."""
        metrics = self.window_metrics(sample)
        for gate in self.gates:
            if gate.metric not in metrics:
                continue
            if sample.t < self.delay_s or not gate.breached(metrics[gate.metric]):
                self._since.pop(gate.id, None)
                continue
            since = self._since.setdefault(gate.id, sample.t)
            sustain = self.after_s if self.after_s is not None else gate.for_s
            if sample.t - since >= sustain:
                return gate
        return None
