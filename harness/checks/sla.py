"""SLA checks over workload operations: success rate, latency percentile, recovery time
(bands from runbook 000_030ea53f0735abf7.txt §7: success > 99 % and latency < 500 ms are healthy).

Matched: `success_rate` the operations in scope, `latency` the successful ones, `recovery_time` the
operations on the vendor started after the fault ended. None of them passes on nothing (no operation in
scope, no fault to recover from, a fault that never ended) unless `allow_empty: true`."""

from __future__ import annotations

import math

from harness.checks.anchors import describe_point
from harness.checks.context import CheckContext
from harness.checks.models import LatencyPercentile, RecoveryTime, SuccessRate
from harness.checks.outcome import nothing, result
from harness.checks.result import CheckResult
from harness.durations import format_duration
from harness.journal import OperationEvent


def _scope(spec: SuccessRate | LatencyPercentile) -> str:
    who = spec.vendor or "all vendors"
    if spec.between is not None:
        who += f", started {describe_point(spec.between[0])} to {describe_point(spec.between[1])}"
    if not spec.outside_faults:
        return who
    return f"{who}, outside fault windows" + (f" (+{format_duration(spec.grace)} grace)" if spec.grace else "")


def _operations(spec: SuccessRate | LatencyPercentile, ctx: CheckContext,
                *, ok_only: bool) -> tuple[list[OperationEvent], str]:
    """The operations in scope, or why the scope cannot be had (an anchor whose fault never came)."""
    window, why = ctx.window(spec.between)
    if window is None:
        return [], why
    begin, end = window
    ops = [op for op in ctx.operations_on(spec.vendor) if (op.ok or not ok_only) and begin <= op.started < end]
    return (ctx.outside_faults(ops, spec.grace) if spec.outside_faults else ops), ""


def success_rate(spec: SuccessRate, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the operations in scope. Nothing: none (or an anchor that never came)."""
    ops, why = _operations(spec, ctx, ok_only=False)
    threshold = f">= {spec.min * 100:g}% ({_scope(spec)})"
    if not ops:
        return nothing(spec, why=why or "no operation in scope", unit="ratio", threshold=threshold, source=source)
    if len(ops) < spec.min_operations:
        return result(spec, passed=False, observed=None, unit="ratio", threshold=threshold, source=source,
                      detail=f"only {len(ops)} operation(s) in scope, need {spec.min_operations}", matched=len(ops))
    ok = sum(1 for op in ops if op.ok)
    rate = ok / len(ops)
    failures: dict[str, int] = {}
    for op in ops:
        if not op.ok:
            failures[op.error or "?"] = failures.get(op.error or "?", 0) + 1
    why = ", ".join(f"{k} x{v}" for k, v in sorted(failures.items()))
    return result(spec, passed=rate >= spec.min, observed=rate, unit="ratio", threshold=threshold, source=source,
                  detail=f"{ok}/{len(ops)} operations succeeded" + (f"; failures: {why}" if why else ""),
                  matched=len(ops))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n))."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency(spec: LatencyPercentile, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the successful operations in scope. Nothing: none."""
    ops, why = _operations(spec, ctx, ok_only=True)
    scope = _scope(spec)
    label = "mean" if spec.statistic == "mean" else f"p{spec.percentile:g}"
    threshold = f"{label} <= {spec.max * 1000:g} ms ({scope})"
    if not ops:
        return nothing(spec, why=why or "no successful operation in scope", unit="ms", threshold=threshold,
                       source=source)
    durations = [op.duration_ms for op in ops]
    value = sum(durations) / len(durations) if spec.statistic == "mean" else percentile(durations, spec.percentile)
    return result(spec, passed=value <= spec.max * 1000, observed=value, unit="ms", threshold=threshold,
                  source=source, detail=f"over {len(ops)} successful operations", matched=len(ops))


def recovery_time(spec: RecoveryTime, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: operations on the vendor started after the fault ended. Nothing: no fault, never ended, no op."""
    anchor = f"fault {spec.fault}" if spec.fault else f"the last fault on {spec.vendor}"
    threshold = (f"<= {format_duration(spec.max)} after {anchor} ends "
                 f"(then {format_duration(spec.stable_for)} without a failure)")
    end, why = ctx.after_end(ctx.pick(spec.vendor, spec.fault, which="last"))
    if end is None:
        return nothing(spec, why=why, unit="s", threshold=threshold, source=source)
    after = sorted((op for op in ctx.operations_on(spec.vendor) if op.started >= end), key=lambda o: o.started)
    if not after:
        return nothing(spec, why=f"no operation on {spec.vendor} started after the fault ended at {end:g}s",
                       unit="s", threshold=threshold, source=source)
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
                          source=source, matched=len(after),
                          detail=f"first lasting success at {candidate.t:g}s; fault ended at {end:g}s")
    return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source, matched=len(after),
                  detail=f"operations on {spec.vendor} never succeeded for {format_duration(spec.stable_for)} "
                         f"after the fault ended at {end:g}s")
