"""Evaluators of `sla_band` and `alert_rule`: the catalogue's bands and Prometheus-style alert rules
(`harness.sla.evaluate`) over the journal's series. Each result cites the catalogue entry's runbook
sections unless the scenario names its own `source`."""

from __future__ import annotations

from harness.checks.context import CheckContext
from harness.checks.registry import evaluator, result
from harness.checks.result import CheckResult
from harness.checks.sla_models import AlertRule, SlaBand
from harness.durations import format_duration
from harness.sla import NumericBand, default_catalogue
from harness.sla.catalogue import BAND_ORDER
from harness.sla.conditions import format_value
from harness.sla.data import SeriesData
from harness.sla.evaluate import Scope, evaluate_band, evaluate_rule
from harness.sla.series import SERIES


def _end(ctx: CheckContext) -> float:
    return max(ctx.duration, max((e.t for e in ctx.events), default=0.0))


def _windows(ctx: CheckContext, vendor: str | None, grace: float) -> tuple[tuple[float, float], ...]:
    faults = ctx.faults_on(vendor) if vendor else ctx.faults
    return tuple((f.start, f.stop + grace) for f in faults)


@evaluator(SlaBand)
def sla_band(spec: SlaBand, ctx: CheckContext, source: str) -> CheckResult:
    catalogue = default_catalogue()
    entry = catalogue.band(spec.sla)
    assert entry is not None  # checked when the scenario was loaded
    source = spec.source or entry.citation()
    windows = _windows(ctx, spec.vendor, spec.grace) if spec.scope != "all" else ()
    mode = spec.scope
    if spec.after is not None:  # everything before `after` is left out, like a window that masks it
        windows, mode = ((0.0, spec.after), *windows), "steady"
    scope = Scope(mode, windows, _end(ctx))
    graced = spec.grace and spec.scope != "all"
    where = Scope(spec.scope, (), 0.0).describe() + (f" (+{format_duration(spec.grace)} grace)" if graced else "")
    if spec.after is not None:
        where += f", from {format_duration(spec.after)}"
    who = f"{spec.vendor}, " if spec.vendor else ""
    threshold = f"{spec.worst} or better; {entry.describe()} ({who}{where})"
    verdict = evaluate_band(entry, SeriesData(ctx.events, spec.vendor), scope, catalogue.evaluation.interval)
    unit = entry.unit if isinstance(entry, NumericBand) else "state"
    if verdict.band is None:
        return result(spec, passed=False, observed=None, unit=unit, threshold=threshold, source=source,
                      detail=f"no data for {entry.series} in scope: the band cannot be judged")
    if isinstance(entry, NumericBand) and isinstance(verdict.value, float):
        shown = format_value(verdict.value, entry.unit)
    else:
        shown = str(verdict.value)
    at = f" at {verdict.at:g}s" if verdict.at is not None else ""
    detail = f"{verdict.band}: {entry.title} {shown}{at}"
    if verdict.samples > 1:
        detail += f" (worst of {verdict.samples} samples)"
    return result(spec, passed=BAND_ORDER[verdict.band] <= BAND_ORDER[spec.worst], observed=verdict.value,
                  unit=unit, threshold=threshold, source=source, detail=detail)


@evaluator(AlertRule)
def alert_rule(spec: AlertRule, ctx: CheckContext, source: str) -> CheckResult:
    catalogue = default_catalogue()
    rule = catalogue.rule(spec.rule)
    assert rule is not None  # checked when the scenario was loaded
    assert rule.series is not None
    source = spec.source or rule.citation()
    interval = catalogue.evaluation.interval
    end = _end(ctx)
    windows = _windows(ctx, spec.vendor, spec.grace)
    masked = None
    if spec.scope == "steady":
        def masked(t: float) -> bool:
            return any(start <= t <= stop for start, stop in windows)
    outcome = evaluate_rule(rule, SeriesData(ctx.events, spec.vendor), end, interval, masked)
    windowed = SERIES[rule.series].shape == "window"
    expr = f"{rule.series} {rule.when}" + (f" over {format_duration(rule.window)}" if windowed else "")
    rule_text = f"{rule.severity} {rule.title}: {expr} for {format_duration(rule.for_)}"
    unit = rule.condition.unit
    firings = "; ".join(
        f"pending {f.pending:g}s, firing {f.fired:g}s, "
        + ("still firing" if f.resolved is None else f"resolved {f.resolved:g}s")
        + f" (peak {format_value(f.peak, unit)})" for f in outcome.firings[:3])
    more = f"; {len(outcome.firings) - 3} more" if len(outcome.firings) > 3 else ""
    if not spec.fires:
        detail = (f"fired: {firings}{more}" if outcome.fired else
                  f"never fired over {outcome.evaluations} evaluations every {format_duration(interval)}; "
                  f"peak {format_value(outcome.peak, unit)}, held at most {format_duration(outcome.longest_pending)}")
        first = outcome.firings[0].fired if outcome.fired else None
        return result(spec, passed=not outcome.fired, observed=first, unit="s",
                      threshold=f"does not fire ({rule_text})", source=source, detail=detail)
    origin = min((f.start for f in ctx.faults), default=0.0)
    limit = f" within {format_duration(spec.within)} of {origin:g}s" if spec.within is not None else ""
    threshold = f"fires{limit} ({rule_text})"
    if not outcome.fired:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"never fired; peak {format_value(outcome.peak, unit)}, "
                             f"held at most {format_duration(outcome.longest_pending)}")
    delay = outcome.firings[0].fired - origin
    passed = spec.within is None or delay <= spec.within
    return result(spec, passed=passed, observed=delay, unit="s", threshold=threshold, source=source,
                  detail=f"fired {delay:g}s after {origin:g}s: {firings}{more}")
