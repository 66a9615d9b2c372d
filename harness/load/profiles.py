"""The load profiles: which locustfile, which targets, which shape and limits by default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
SHAPES = ("steady", "ramp", "spike", "soak")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    locustfile: str
    description: str
    vendor: bool = True  # drives a simulator directly
    service: bool = False  # drives the integration service (and, through it, Medplum)
    shape: str = "steady"
    run_time_s: float = 30.0
    max_rss_growth_mb: float | None = None  # a memory gate on the simulators' process (soak)

    @property
    def path(self) -> Path:
        return LOADTESTS / self.locustfile


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("read", "clinician_read.py", "clinician reads: token once, patient reads, paged searches"),
    Profile("write", "observation_write.py", "observation writes to the simulator"),
    Profile("mixed", "mixed.py", "reads and writes, three readers to one writer"),
    Profile("service", "service.py", "the integration service: ingress writes, $everything exports, queue stats",
            vendor=False, service=True),
    Profile("soak", "mixed.py", "the mixed profile for minutes, sampling the simulators' memory",
            shape="soak", run_time_s=180.0, max_rss_growth_mb=64.0),
)}
