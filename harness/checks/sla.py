"""SLA checks over workload operations: success rate, latency percentile, recovery time
(bands from runbook 000_030ea53f0735abf7.txt §7: success > 99 % and latency < 500 ms are healthy)."""

from __future__ import annotations

import math

from harness.checks.context import CheckContext
from harness.checks.models import LatencyPercentile, RecoveryTime, SuccessRate
from harness.checks.registry import evaluator, result
from harness.checks.result import CheckResult
from harness.durations import format_duration
from harness.journal import OperationEvent


def _scope(spec: SuccessRate | LatencyPercentile) -> str:
    who = spec.vendor or "all vendors"
    if spec.between is not None:
        who += f", started {format_duration(spec.between[0])}-{format_duration(spec.between[1])}"
    if not spec.outside_faults:
        return who
    return f"{who}, outside fault windows" + (f" (+{format_duration(spec.grace)} grace)" if spec.grace else "")


def _operations(spec: SuccessRate | LatencyPercentile, ctx: CheckContext, *, ok_only: bool) -> list[OperationEvent]:
    ops = [op for op in ctx.operations_on(spec.vendor) if op.ok or not ok_only]
    if spec.between is not None:
        begin, end = spec.between
        ops = [op for op in ops if begin <= op.started < end]
    return ctx.outside_faults(ops, spec.grace) if spec.outside_faults else ops


@evaluator(SuccessRate)
def success_rate(spec: SuccessRate, ctx: CheckContext, source: str) -> CheckResult:
    ops = _operations(spec, ctx, ok_only=False)
    threshold = f">= {spec.min * 100:g}% ({_scope(spec)})"
    if len(ops) < max(1, spec.min_operations):
        return result(spec, passed=False, observed=None, unit="ratio", threshold=threshold, source=source,
                      detail=f"only {len(ops)} operation(s) in scope, need {max(1, spec.min_operations)}")
    ok = sum(1 for op in ops if op.ok)
    rate = ok / len(ops)
    failures: dict[str, int] = {}
    for op in ops:
        if not op.ok:
            failures[op.error or "?"] = failures.get(op.error or "?", 0) + 1
    why = ", ".join(f"{k} x{v}" for k, v in sorted(failures.items()))
    return result(spec, passed=rate >= spec.min, observed=rate, unit="ratio", threshold=threshold, source=source,
                  detail=f"{ok}/{len(ops)} operations succeeded" + (f"; failures: {why}" if why else ""))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n))."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@evaluator(LatencyPercentile)
def latency(spec: LatencyPercentile, ctx: CheckContext, source: str) -> CheckResult:
    ops = _operations(spec, ctx, ok_only=True)
    scope = _scope(spec)
    label = "mean" if spec.statistic == "mean" else f"p{spec.percentile:g}"
    threshold = f"{label} <= {spec.max * 1000:g} ms ({scope})"
    if not ops:
        return result(spec, passed=False, observed=None, unit="ms", threshold=threshold, source=source,
                      detail="no successful operation in scope")
    durations = [op.duration_ms for op in ops]
    value = sum(durations) / len(durations) if spec.statistic == "mean" else percentile(durations, spec.percentile)
    return result(spec, passed=value <= spec.max * 1000, observed=value, unit="ms", threshold=threshold,
                  source=source, detail=f"over {len(ops)} successful operations")


@evaluator(RecoveryTime)
def recovery_time(spec: RecoveryTime, ctx: CheckContext, source: str) -> CheckResult:
    threshold = f"<= {format_duration(spec.max)} (then {format_duration(spec.stable_for)} without a failure)"
    faults = ctx.faults_on(spec.vendor)
    if not faults:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"no fault targeted {spec.vendor}")
    end = max(f.stop for f in faults)
    after = sorted((op for op in ctx.operations_on(spec.vendor) if op.started >= end), key=lambda o: o.started)
    for i, candidate in enumerate(after):
        if not candidate.ok:
            continue
        horizon = candidate.started + spec.stable_for
        if horizon > ctx.duration:
            break
        window = [op for op in after[i:] if op.started <= horizon]
        if all(op.ok for op in window):
            delay = max(0.0, candidate.t - end)
            return result(spec, passed=delay <= spec.max, observed=delay, unit="s", threshold=threshold,
                          source=source, detail=f"first lasting success at {candidate.t:g}s; fault ended at {end:g}s")
    return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                  detail=f"operations on {spec.vendor} never succeeded for {format_duration(spec.stable_for)} "
                         f"after the fault ended at {end:g}s")
