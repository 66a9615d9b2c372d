"""A load run's verdicts beside locust's own CSV and HTML: summary.json and junit.xml (one testcase per gate)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.load.gates import GateVerdict, Sample


@dataclass(frozen=True, slots=True)
class LoadSummary:
    run_id: str
    profile: str
    shape: str
    users: int
    spawn_rate: float
    run_time_s: float
    workers: int
    seed: int
    fault_scenario: str | None
    replay: str
    gates: Sequence[GateVerdict]
    final: Sample | None
    wall_s: float
    aborted: tuple[str, float] | None = None
    rss: dict[str, object] = field(default_factory=dict)
    lab_error: str | None = None

    @property
    def verdict(self) -> str:
        return "pass" if self.lab_error is None and self.gates and all(g.passed for g in self.gates) else "fail"

    def stats(self) -> dict[str, object]:
        f = self.final
        if f is None:
            return {}
        return {"requests": f.requests, "failures": f.failures, "server_errors": f.server_errors,
                "requests_per_s": round(f.requests / f.t, 1) if f.t > 0 else None,
                "p95_ms": f.p95_ms, "avg_ms": round(f.avg_ms, 1), "duration_s": f.t}

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id, "kind": "load", "verdict": self.verdict, "profile": self.profile,
            "shape": self.shape, "users": self.users, "spawn_rate": self.spawn_rate, "run_time_s": self.run_time_s,
            "workers": self.workers, "seed": self.seed, "fault_scenario": self.fault_scenario, "replay": self.replay,
            "wall_s": round(self.wall_s, 1), "stats": self.stats(), "gates": [g.as_dict() for g in self.gates],
            "aborted": None if self.aborted is None else {"gate": self.aborted[0], "at_s": self.aborted[1]},
            "rss": self.rss, "lab_error": self.lab_error,
            "files": {"locust_csv": "locust_stats.csv", "locust_history": "locust_stats_history.csv",
                      "locust_html": "locust.html", "samples": "samples.jsonl", "faults": "faults.jsonl"},
        }


def write_junit(summary: LoadSummary, path: Path) -> None:
    cases = list(summary.gates)
    failures = sum(1 for g in cases if not g.passed)
    suite = ET.Element("testsuite", name=f"ehrlab.load.{summary.profile}", tests=str(len(cases) + 1),
                       failures=str(failures), errors="1" if summary.lab_error else "0",
                       time=f"{summary.wall_s:.1f}")
    props = ET.SubElement(suite, "properties")
    for key, value in (("run_id", summary.run_id), ("seed", str(summary.seed)), ("replay", summary.replay)):
        ET.SubElement(props, "property", name=key, value=value)
    lab = ET.SubElement(suite, "testcase", classname=f"load.{summary.profile}", name="lab")
    if summary.lab_error:
        ET.SubElement(lab, "error", message=summary.lab_error)
    for gate in cases:
        case = ET.SubElement(suite, "testcase", classname=f"load.{summary.profile}", name=gate.id)
        if not gate.passed:
            ET.SubElement(case, "failure", message=gate.message, type="GateFailed").text = (
                f"{gate.title}\n{gate.message}\nsource: {gate.source}")
        else:
            ET.SubElement(case, "system-out").text = gate.message
    ET.indent(suite)
    path.write_text(ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


def write_reports(directory: Path, summary: LoadSummary) -> None:
    (directory / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    write_junit(summary, directory / "junit.xml")


def verdict_lines(summary: LoadSummary) -> list[str]:
    lines = [f"{'PASS' if g.passed else 'FAIL'}  {g.id:<22} {g.message}" for g in summary.gates]
    stats = summary.stats()
    if stats:
        lines.append(f"      {stats['requests']} requests, {stats['failures']} failed, {stats['server_errors']} 5xx, "
                     f"{stats['requests_per_s']} req/s, p95 {stats['p95_ms']} ms")
    if summary.rss:
        lines.append(f"      simulator RSS {summary.rss.get('start_mb')} -> {summary.rss.get('end_mb')} MB "
                     f"(growth {summary.rss.get('growth_mb')} MB, peak {summary.rss.get('peak_mb')} MB)")
    if summary.lab_error:
        lines.append(f"LAB ERROR: {summary.lab_error}")
    return lines
