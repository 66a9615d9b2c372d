"""The SLA catalogue: it loads, every entry cites an existing runbook, and a bad file gets a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.sla import DEFAULT_PATH, CatalogueError, default_catalogue, load_catalogue
from harness.sla.catalogue import cited_file
from harness.sla.conditions import parse_condition

RUNBOOKS = Path(__file__).resolve().parents[3].parent / "shared" / "runbooks"


def test_the_catalogue_loads() -> None:
    catalogue = default_catalogue()
    assert catalogue.rule("002-8.4-failed-jobs") is not None
    assert catalogue.band("000-7-circuit-state") is not None
    assert len(catalogue.rules) >= 16


@pytest.mark.skipif(not RUNBOOKS.is_dir(), reason="the runbooks are not next to the repository")
def test_every_citation_names_an_existing_runbook() -> None:
    catalogue = default_catalogue()
    for entry in catalogue.entries():
        assert entry.source, entry.id
        for citation in entry.source:
            assert (RUNBOOKS / cited_file(citation)).is_file(), f"{entry.id}: {citation}"
    for citation in catalogue.citations():
        assert (RUNBOOKS / cited_file(citation)).is_file(), citation


def test_the_issue_s_thresholds_are_data() -> None:
    c = default_catalogue()

    def rule(rule_id: str) -> tuple[str | None, str | None, float]:
        r = c.rule(rule_id)
        assert r is not None
        return r.series, r.when, r.for_

    assert rule("002-8.4-failed-jobs") == ("queue_failed_jobs", "> 10", 300.0)
    assert rule("002-8.4-waiting-jobs") == ("queue_waiting_jobs", "> 100", 300.0)
    assert rule("002-8.4-5xx-rate") == ("request_5xx_ratio", "> 5%", 180.0)
    assert rule("002-8.4-slow-api") == ("operation_latency_p95_ms", "> 300ms", 300.0)
    assert rule("002-8.4-denied-consent") == ("consent_denied_per_min", "> 5/min", 60.0)

    def value(setting_id: str) -> float:
        s = c.setting(setting_id)
        assert s is not None
        return s.quantity

    assert value("000-2-breaker-half-open") == 60.0
    assert (value("000-8-read-soak"), value("000-8-write-soak")) == (900.0, 1800.0)
    assert (value("002-2.1-backoff-initial"), value("002-2.1-backoff-max"), value("002-2.1-backoff-jitter")) == (
        1.0, 10.0, 0.25)
    assert value("002-2.1-token-margin") == 60.0
    assert (value("002-2.2-concurrency"), value("002-2.2-rate-limit"), value("002-2.2-attempts")) == (5, 600, 3)
    assert value("002-7.3-drain-max") == 120.0
    p001, p003 = c.profile("001"), c.profile("003")
    assert p001 is not None
    assert p003 is not None
    assert [lv.level for lv in p001.levels] == ["P0", "P1", "P2", "P3"]
    assert [lv.response for lv in p003.levels] == [300.0, 900.0, 3600.0, 14400.0]
    assert [p001.classify("no"), p001.classify("partial", "no"), p001.classify("partial", "yes")] == [
        p001.levels[0], p001.levels[1], p001.levels[3]]


GOOD_RULE = """
version: 1
evaluation: {interval: 15s, source: ["002_437ee203264dfa64.txt §8.1"]}
rules:
  - id: 002-8.4-failed-jobs
    title: Excessive Queue Failures
    severity: P2
    series: queue_failed_jobs
    when: "{when}"
    for: 5m
    source: ["{source}"]
"""


@pytest.mark.parametrize(("when", "source", "line", "field", "message"), [
    ("> 10ms", "002_437ee203264dfa64.txt §8.4", 9, "rules[0] (002-8.4-failed-jobs).when",
     "has the wrong unit: this series is measured in count"),
    ("> 10", "runbook 002", 11, "rules[0] (002-8.4-failed-jobs).source[0]", "must be '<runbook file> §<section>'"),
    ("over 10", "002_437ee203264dfa64.txt §8.4", 9, "rules[0] (002-8.4-failed-jobs).when", "expected a threshold like"),
])
def test_a_bad_rule_names_file_line_and_field(tmp_path: Path, when: str, source: str, line: int, field: str,
                                              message: str) -> None:
    path = tmp_path / "slas.yaml"
    path.write_text(GOOD_RULE.replace("{when}", when).replace("{source}", source), encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    error = caught.value
    assert error.file == str(path)
    assert error.field == field
    assert message in error.message
    assert error.line == line
    assert str(path) in str(error)


@pytest.mark.parametrize(("text", "field", "message"), [
    ("version: 1\nevaluation: {interval: 15s, source: ['002_437ee203264dfa64.txt §8.1']}\nbogus: 1\n",
     "bogus", "unknown field"),
    ("version: 1\n", "evaluation", "missing field"),
    ("version: 1\nevaluation: {interval: 15s, source: ['002_437ee203264dfa64.txt §8.1']}\n"
     "bands: [{id: 000-7-x, title: t, series: nope, healthy: '> 1', source: ['000_030ea53f0735abf7.txt §7']}]\n",
     "bands[0] (000-7-x).series", "unknown series 'nope'"),
    ("version: 1\nevaluation: {interval: 15s, source: ['002_437ee203264dfa64.txt §8.1']}\n"
     "rules: [{id: 002-8.4-x, title: t, severity: P2, source: ['002_437ee203264dfa64.txt §8.4']}]\n",
     "rules[0] (002-8.4-x)", "a rule needs series and when"),
])
def test_bad_catalogues_are_refused_precisely(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = tmp_path / "slas.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert caught.value.field == field
    assert message in caught.value.message


def test_duplicate_ids_and_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "slas.yaml"
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    path.write_text(text.replace("id: 000-7-write-success-rate", "id: 000-7-success-rate"), encoding="utf-8")
    with pytest.raises(CatalogueError, match="'000-7-success-rate' is used twice"):
        load_catalogue(path)
    path.write_text("version: 1\nrules: [\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML") as caught:
        load_catalogue(path)
    assert caught.value.line is not None
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("> 99%", "ratio", 0.99), ("< 500ms", "ms", 500.0), ("> 2s", "ms", 2000.0), ("<= 24h", "s", 86400.0),
    ("> 5/min", "per_min", 5.0), ("> 2/s", "per_min", 120.0), ("== 0", "count", 0.0),
])
def test_thresholds_convert_to_the_series_unit(text: str, unit: str, value: float) -> None:
    assert parse_condition(text, unit).value == pytest.approx(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "unit"), [("> 99", "ratio"), ("< 500", "ms"), ("> 5", "per_min"), ("> 5%", "count")])
def test_thresholds_of_the_wrong_unit_are_refused(text: str, unit: str) -> None:
    with pytest.raises(ValueError, match="wrong unit"):
        parse_condition(text, unit)  # type: ignore[arg-type]


def test_a_hostile_catalogue_is_refused_like_a_hostile_scenario(tmp_path: Path) -> None:
    """EHRLAB_SLAS may name any file: the catalogue goes through the scenario loader's bounded reader."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="nested") as caught:
        load_catalogue(deep)
    assert caught.value.file == str(deep)
    laughs = tmp_path / "laughs.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    laughs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="values"):
        load_catalogue(laughs)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(CatalogueError, match="not a regular file"):
        load_catalogue(fifo)
