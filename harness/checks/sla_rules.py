"""Evaluators of `sla_band` and `alert_rule`: the catalogue's bands and Prometheus-style alert rules
(`harness.sla.evaluate`) over the journal's series. Each result cites the catalogue entry's runbook
sections unless the scenario names its own `source`.

Fault windows (the `steady` / `faults` scopes, an alert's "first fault") are incidents only: background
conditions (`background: true`) are part of the steady state. Matched: a band's samples (window series:
the events in scope), a rule's feeding events or points (`SeriesData.support`); none is "matched nothing"."""

from __future__ import annotations

from harness.checks.anchors import describe_point
from harness.checks.context import CheckContext
from harness.checks.outcome import nothing, result
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
    return tuple((f.start, f.stop + grace) for f in ctx.incidents(vendor))


def sla_band(spec: SlaBand, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the samples judged (window series: events in scope). Nothing: no data in scope."""
    catalogue = default_catalogue()
    entry = catalogue.band(spec.sla)
    assert entry is not None  # checked when the scenario was loaded
    source = spec.source or entry.citation()
    windows = _windows(ctx, spec.vendor, spec.grace) if spec.scope != "all" else ()
    graced = spec.grace and spec.scope != "all"
    where = Scope(spec.scope, (), 0.0).describe() + (f" (+{format_duration(spec.grace)} grace)" if graced else "")
    if spec.after is not None:
        where += f", from {describe_point(spec.after)}"
    who = f"{spec.vendor}, " if spec.vendor else ""
    threshold = f"{spec.worst} or better; {entry.describe()} ({who}{where})"
    unit = entry.unit if isinstance(entry, NumericBand) else "state"
    mode = spec.scope
    if spec.after is not None:  # everything before `after` is left out, like a window that masks it
        after, why = ctx.resolve(spec.after)
        if after is None:
            return nothing(spec, why=why, unit=unit, threshold=threshold, source=source)
        windows, mode = ((0.0, after), *windows), "steady"
    scope = Scope(mode, windows, _end(ctx))
    data = SeriesData(ctx.events, spec.vendor)
    verdict = evaluate_band(entry, data, scope, catalogue.evaluation.interval)
    shape = SERIES[entry.series].shape
    matched = data.count(entry.series, scope.event_in) if shape == "window" else verdict.samples
    if shape == "state":
        empty = not data.support(entry.series) and not _called(ctx, spec.vendor)
    else:
        empty = not matched or not data.support(entry.series)
    if verdict.band is None or empty:
        return nothing(spec, why=f"no data for {entry.series}{_for(spec.vendor)} in scope: the band cannot be judged",
                       unit=unit, threshold=threshold, source=source)
    if isinstance(entry, NumericBand) and isinstance(verdict.value, float):
        shown = format_value(verdict.value, entry.unit)
    else:
        shown = str(verdict.value)
    at = f" at {verdict.at:g}s" if verdict.at is not None else ""
    detail = f"{verdict.band}: {entry.title} {shown}{at}"
    if verdict.samples > 1:
        detail += f" (worst of {verdict.samples} samples)"
    return result(spec, passed=BAND_ORDER[verdict.band] <= BAND_ORDER[spec.worst], observed=verdict.value,
                  unit=unit, threshold=threshold, source=source, detail=detail, matched=matched)


def _called(ctx: CheckContext, vendor: str | None) -> bool:
    """A breaker with no transition was CLOSED all along only if calls went through it (its vendor's requests
    or workload operations)."""
    return bool(ctx.operations_on(vendor)) or (ctx.breaker_calls(vendor) > 0 if vendor else bool(ctx.breakers()))


def alert_rule(spec: AlertRule, ctx: CheckContext, source: str) -> CheckResult:
    """Matched: the events feeding the rule's series. Nothing: none, or a named fault that never started."""
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
    data = SeriesData(ctx.events, spec.vendor)
    outcome = evaluate_rule(rule, data, end, interval, masked)
    support = data.support(rule.series)
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
        if not support:
            return nothing(spec, why=f"no journal event feeds {rule.series}{_for(spec.vendor)}", unit="s",
                           threshold=f"does not fire ({rule_text})", source=source)
        return result(spec, passed=not outcome.fired, observed=first, unit="s",
                      threshold=f"does not fire ({rule_text})", source=source, detail=detail, matched=support)
    if spec.fault is not None:
        named = ctx.named(spec.fault)
        origin = named.start if named is not None else 0.0
        origin_text = f"fault {spec.fault} ({origin:g}s)"
    else:
        origin = min((f.start for f in ctx.incidents()), default=0.0)
        origin_text = f"{origin:g}s"
    limit = f" within {format_duration(spec.within)} of {origin_text}" if spec.within is not None else ""
    threshold = f"fires{limit} ({rule_text})"
    if spec.fault is not None and ctx.named(spec.fault) is None:
        return nothing(spec, why=f"no fault named {spec.fault!r} started in this run", unit="s",
                       threshold=threshold, source=source)
    if not support:
        return nothing(spec, why=f"no journal event feeds {rule.series}{_for(spec.vendor)}", unit="s",
                       threshold=threshold, source=source)
    if not outcome.fired:
        return result(spec, passed=False, observed=None, unit="s", threshold=threshold, source=source,
                      detail=f"never fired; peak {format_value(outcome.peak, unit)}, "
                             f"held at most {format_duration(outcome.longest_pending)}", matched=support)
    delay = outcome.firings[0].fired - origin
    passed = spec.within is None or delay <= spec.within
    return result(spec, passed=passed, observed=delay, unit="s", threshold=threshold, source=source,
                  detail=f"fired {delay:g}s after {origin_text}: {firings}{more}", matched=support)


def _for(vendor: str | None) -> str:
    return f" for {vendor}" if vendor else ""
