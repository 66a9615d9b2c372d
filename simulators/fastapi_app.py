"""The FastAPI app a simulator is built on: `simulator_api(**options)`, a `FastAPI` with native telemetry off.

FastAPI (0.16x) instruments every request with OpenTelemetry whenever a global tracer, meter or logger
provider is configured, and asks the OpenTelemetry API whether one is on every request even when none
is (a tenth of a Medplum read's server time, benchmarks/simulator_throughput.py). A fake vendor server
must not emit spans: in virtual mode it shares the process of the integration under test, whose own
traces would fill with the simulators' requests. Versions of FastAPI without the `telemetry` option
have no native telemetry, and get the other options only.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

_TELEMETRY_OFF: dict[str, Any] = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}


def simulator_api(**options: Any) -> FastAPI:
    """`FastAPI(**options)` with FastAPI's native OpenTelemetry switched off (see the module docstring)."""
    return FastAPI(**_TELEMETRY_OFF, **options)
