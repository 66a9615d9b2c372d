"""report.html in headless Chromium: it renders without console errors, the SVG is in the DOM, and the chart
area of a screenshot is not blank. Skips without /usr/bin/chromium unless EHRLAB_REQUIRE_BROWSER=1 (CI);
EHRLAB_CHROMIUM names another binary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.journal import Event, FaultStarted
from harness.report.writers import write_run
from tests.harness.report.builders import check, job, outage_journal, summary_for
from tests.harness.report.png import Image, read_png

pytestmark = pytest.mark.browser

CLOSED_GREEN = (46, 125, 50)  # the CLOSED breaker band (harness/report/html.py, --ok)
CONSOLE = re.compile(r"CONSOLE|Uncaught", re.IGNORECASE)


def _chromium() -> str:
    """The Chromium binary: $EHRLAB_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH."""
    wanted = os.environ.get("EHRLAB_CHROMIUM")
    if wanted:
        path = wanted if Path(wanted).is_file() else None
    else:
        path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if path is None:
        reason = f"headless Chromium not installed ({wanted or '/usr/bin/chromium'}; Debian package `chromium`)"
        if os.environ.get("EHRLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and EHRLAB_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return path


def _report(tmp_path: Path) -> Path:
    checks = [check("breaker_opens[medplum]"), check("latency", passed=False)]
    events: list[Event] = outage_journal(checks=checks)
    events[5:5] = [job(4.0, "job.added", f"j{i}", delay_s=0.0, attempts=1) for i in range(6)]
    events[40:40] = [job(35.0, "job.started", "j0", attempt=1, worker="w"),
                     job(36.0, "job.failed", "j0", attempts=1, error="ServerError", worker="w")]
    events.insert(1, FaultStarted(t=0.0, fault_id="f0", fault="net_latency", target="medplum", params={"latency": 80},
                                  name="wan-latency", background=True))
    directory = tmp_path / "run"
    write_run(directory, summary_for([("outage", checks)]), [e.model_dump_json() for e in events])
    return directory / "report.html"


def _chrome(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
               "--v=0", f"--user-data-dir={tmp_path / 'profile'}", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]
    assert console == [], "console messages: " + "\n".join(console)
    return proc


def _chart_rows(image: Image) -> list[int]:
    """Rows where the first CLOSED breaker band is drawn (many CLOSED-green pixels)."""
    return [y for y in range(len(image.rows))
            if sum(1 for x in range(0, image.width, 2) if image.pixel(x, y) == CLOSED_GREEN) > 40]


def test_report_renders_in_headless_chromium_with_a_chart(tmp_path: Path) -> None:
    binary = _chromium()
    html = _report(tmp_path)
    dom = _chrome(binary, tmp_path, "--dump-dom", html.as_uri()).stdout
    assert dom.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') == 1
    assert 'class="fault-window"' in dom
    assert 'class="series q-waiting"' in dom
    assert ">outage@medplum (f1)</text>" in dom  # the fault's name labels its bar
    assert 'class="fault-label background">wan-latency (f0)</text>' in dom  # the background lane

    shot = tmp_path / "report.png"
    _chrome(binary, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", html.as_uri())
    image = read_png(shot, max_rows=1400)
    assert image.width == 1400
    band = _chart_rows(image)
    assert band, "no breaker band in the screenshot: the chart did not render"
    top = band[0] - 40  # the fault lane sits above the breaker band; the panels below
    region = [(x, y) for y in range(top, min(top + 360, len(image.rows)), 3) for x in range(180, 1250, 3)]
    ink = sum(1 for x, y in region if image.pixel(x, y) != (255, 255, 255))
    assert ink / len(region) > 0.15, f"chart area nearly blank: {ink} of {len(region)} sampled pixels inked"
    colours = {image.pixel(x, y) for x, y in region}
    assert CLOSED_GREEN in colours
    assert (198, 40, 40) in colours  # the OPEN band
