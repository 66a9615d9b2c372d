"""Every benchmark in one run, one table of ratios (`make bench` = `benchmarks/run_all.py --all`).

Each measure is a ratio against a baseline taken in the same run, seconds apart, so a noisy shared
machine moves both sides alike:

- virtual-time compression of the whole scenario library (scenario seconds per wall second);
- simulator throughput vs a bare Starlette endpoint (`simulator_throughput.py`: read, paged search);
- proxy vs direct (`proxy_throughput.py`: small requests, echo p50, 64 MiB bulk);
- queue drain rate per store vs `asyncio.Queue` (`queue_throughput.py`), and observation-sync jobs;
- locust requests/s with 1 and 2 workers (`ehrlab load`), when that command exists.

The three throughput scripts run as child processes, as their own docstrings require (each serves from
its own process), and their printed tables are parsed here; a line that no longer parses becomes a row
saying so rather than a crash, so a changed script shows up in the table.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_NUMBER = r"([\d,]+(?:\.\d+)?)"


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    measure: str
    value: str  # the measured figure, with its unit
    baseline: str  # what it is compared with, measured in the same run
    ratio: str  # value / baseline (or a note when not measured)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _script(name: str, *args: str, timeout_s: float = 900) -> str:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def library_compression() -> list[Row]:
    """Every scenario of scenarios/ in virtual mode, once: total scenario time over total wall time."""
    from harness.runner import run_scenario
    from harness.scenario import load_scenario

    scenario_s = wall_s = 0.0
    files = sorted(p for p in (REPO / "scenarios").glob("*.yaml") if p.name != "slas.yaml")
    for path in files:
        scenario = load_scenario(path)
        started = time.perf_counter()
        run_scenario(scenario, file=path, mode="virtual", seed=1)
        wall_s += time.perf_counter() - started
        scenario_s += scenario.duration
    return [Row("virtual time", f"scenario library ({len(files)} scenarios)", f"{scenario_s:,.0f} scenario s",
                f"{wall_s:,.1f} wall s", f"{scenario_s / wall_s:,.0f}x")]


def simulator_rows(seconds: float, rounds: int) -> list[Row]:
    out = _script("simulator_throughput.py", "--seconds", str(seconds), "--rounds", str(rounds))
    rates = {m.group(1): _num(m.group(2)) for m in
             re.finditer(r"^\s+(bare Starlette JSON|medplum read|medplum search)\s+" + _NUMBER, out, re.M)}
    bare = rates.get("bare Starlette JSON")
    rows = []
    for label, what in (("medplum read", "authenticated read"), ("medplum search", "paged search (20/page)")):
        if bare is None or label not in rates:
            rows.append(Row("simulator", what, "not parsed", "", "see simulator_throughput.py"))
            continue
        rows.append(Row("simulator", f"{what}, Medplum under uvicorn", f"{rates[label]:,.0f} req/s",
                        f"bare Starlette {bare:,.0f} req/s", f"{rates[label] / bare:.0%}"))
    return rows


def proxy_rows(seconds: float, repeat: int) -> list[Row]:
    out = _script("proxy_throughput.py", "--seconds", str(seconds), "--repeat", str(repeat))
    rows = []
    for label, what, unit in (("small HTTP request/response (requests/s)", "small requests", "req/s"),
                              ("echo round trip p50 (ms)", "echo round trip p50", "ms"),
                              ("bulk transfer, 64 MiB one way (MB/s)", "bulk 64 MiB", "MB/s")):
        found = re.search(re.escape(label) + r"\s+" + _NUMBER + r"\s+" + _NUMBER, out)
        if found is None:
            rows.append(Row("proxy", what, "not parsed", "", "see proxy_throughput.py"))
            continue
        direct, proxied = _num(found.group(1)), _num(found.group(2))
        ratio = f"{proxied / direct:.2f}x" if unit == "ms" else f"{proxied / direct:.0%}"
        rows.append(Row("proxy", f"{what}, through the proxy", f"{proxied:,.3g} {unit}",
                        f"direct {direct:,.3g} {unit}", ratio))
    return rows


def queue_rows(jobs: int, sync_jobs: int, repeat: int) -> list[Row]:
    out = _script("queue_throughput.py", "--jobs", str(jobs), "--sync-jobs", str(sync_jobs), "--repeat", str(repeat))
    drain, _, sync = out.partition("sync jobs:")
    rows = []
    base: dict[int, float] = {}
    pattern = r"^\s+(asyncio\.Queue|sqlite|redis \(asyncio\)|redis \(blocking\))\s+(\d+)\s+" + _NUMBER
    for m in re.finditer(pattern, drain, re.M):
        store, concurrency, rate = m.group(1), int(m.group(2)), _num(m.group(3))
        if store == "asyncio.Queue":
            base[concurrency] = rate
        elif concurrency in base:
            rows.append(Row("queue", f"drain no-op jobs, {store}, concurrency {concurrency}", f"{rate:,.0f} jobs/s",
                            f"asyncio.Queue {base[concurrency]:,.0f} jobs/s", f"{rate / base[concurrency]:.1%}"))
    sync_rates = {(m.group(1), int(m.group(2))): _num(m.group(3)) for m in re.finditer(pattern, sync, re.M)}
    for (store, concurrency), rate in sync_rates.items():
        reference = sync_rates.get(("sqlite", concurrency))
        if store != "sqlite" and reference:
            rows.append(Row("queue", f"observation sync to Medplum, {store}, concurrency {concurrency}",
                            f"{rate:,.0f} jobs/s", f"sqlite {reference:,.0f} jobs/s", f"{rate / reference:.0%}"))
        elif store == "sqlite":
            rows.append(Row("queue", f"observation sync to Medplum, sqlite, concurrency {concurrency}",
                            f"{rate:,.0f} jobs/s", "", ""))
    if not rows:
        rows.append(Row("queue", "drain per store", "not parsed", "", "see queue_throughput.py"))
    if "redis-server not on PATH" in out:
        rows.append(Row("queue", "redis stores", "not measured", "", "redis-server not on PATH"))
    return rows


def _ehrlab() -> str:
    found = shutil.which("ehrlab", path=str(Path(sys.executable).parent))
    return found or "ehrlab"


def locust_rows(run_time_s: int) -> list[Row]:
    """`ehrlab load` with 1 and 2 workers; a marked row when the command does not exist yet."""
    probe = subprocess.run([_ehrlab(), "load", "--help"], cwd=REPO, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return [Row("locust", f"requests/s, {n} worker(s)", "not measured", "", "ehrlab load missing")
                for n in (1, 2)]
    rates: dict[int, float | None] = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="ehrlab-bench-load-") as tmp:
            subprocess.run([_ehrlab(), "load", "read", "--users", "20", "--spawn-rate", "20", "--run-time",
                            f"{run_time_s}s", "--workers", str(workers), "--seed", "1", "--report-dir", tmp],
                           cwd=REPO, capture_output=True, text=True, timeout=run_time_s * 10 + 120, check=False)
            rates[workers] = _aggregated_rps(Path(tmp))
    one = rates[1]
    rows = []
    for workers, rate in rates.items():
        if rate is None:
            rows.append(Row("locust", f"requests/s, {workers} worker(s)", "not parsed", "", "no locust_stats.csv"))
        else:
            rows.append(Row("locust", f"read profile, 20 users, {workers} worker(s)", f"{rate:,.0f} req/s",
                            f"1 worker {one:,.0f} req/s" if one else "",
                            f"{rate / one:.2f}x" if one else ""))
    return rows


def _aggregated_rps(report_dir: Path) -> float | None:
    """The `Aggregated` row's `Requests/s` of locust's own `*_stats.csv` under the run's report directory."""
    for stats in sorted(report_dir.rglob("*_stats.csv")):
        with stats.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated" and row.get("Requests/s"):
                    return float(row["Requests/s"])
    return None


def run_everything(*, quick: bool = False) -> list[Row]:
    scale = 0.5 if quick else 1.0
    sections = [
        ("virtual time", library_compression),
        ("simulator", lambda: simulator_rows(seconds=2.0 * scale, rounds=3)),
        ("proxy", lambda: proxy_rows(seconds=1.5 * scale, repeat=2)),
        ("queue", lambda: queue_rows(jobs=int(3000 * scale), sync_jobs=int(600 * scale), repeat=2)),
        ("locust", lambda: locust_rows(run_time_s=int(20 * scale))),
    ]
    rows: list[Row] = []
    for group, measure in sections:
        print(f"  measuring: {group} ...", file=sys.stderr, flush=True)
        try:
            rows += measure()
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            rows.append(Row(group, "failed", "not measured", "", str(exc).splitlines()[0][:80]))
    return rows


def table(rows: list[Row]) -> str:
    headers = Row("group", "measure", "measured", "baseline (same run)", "ratio")
    widths = [max(len(getattr(r, f)) for r in [headers, *rows]) for f in Row.__slots__]
    lines = []
    for i, row in enumerate([headers, *rows]):
        lines.append("| " + " | ".join(getattr(row, f).ljust(w) for f, w in zip(Row.__slots__, widths, strict=True))
                     + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
