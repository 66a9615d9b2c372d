"""The fault catalogue: every fault a scenario can name, as typed models (a union on `kind`).

A scenario names a fault once (`kind: outage`, `target: medplum`, `at: 1m`, `for: 2m`, plus the
kind's own parameters); `harness.faults.driver` decides how to inject it in the current mode.

| kind            | what it does                                     | injected as (both modes)                        |
|-----------------|--------------------------------------------------|-------------------------------------------------|
| `outage`        | the simulator answers 503 or drops calls         | simulator chaos `PUT /admin/chaos/outage`       |
| `latency`       | the simulator answers [min, max] late            | simulator chaos `.../latency`                   |
| `error_rate`    | a share of calls answer `status`                 | simulator chaos `.../error-rate`                |
| `net_latency`   | `latency` ± `jitter` per chunk                   | toxic `latency` {latency, jitter} (ms)          |
| `bandwidth`     | at most `rate` KB/s                              | toxic `bandwidth` {rate} (KB/s)                 |
| `slow_close`    | the close comes `delay` late                     | toxic `slow_close` {delay} (ms)                 |
| `timeout`       | data dropped; closed after `timeout` (0: never)  | toxic `timeout` {timeout} (ms)                  |
| `reset_peer`    | TCP RST `timeout` after the first data           | toxic `reset_peer` {timeout} (ms)               |
| `slicer`        | data cut into small pieces, `delay` apart        | toxic `slicer` {average_size, size_variation,   |
|                 |                                                  |   delay (µs)}                                   |
| `limit_data`    | the connection closes after `bytes` bytes        | toxic `limit_data` {bytes}                      |
| `proxy_down`    | connections refused, live ones closed            | proxy `PATCH {"enabled": false}`, then true     |

Simulator faults are PUT to the target simulator's admin API, identically in both modes. Network
faults (`harness.faults.network`) take `stream` (upstream = requests, downstream = responses, the
default) and `toxicity` (the share of connections affected, 1.0 by default), except `proxy_down`;
in real mode they become toxics on the vendor's Toxiproxy proxy, in virtual mode the same toxics on
the in-process emulator (`harness.netem`). Toxic semantics: `../shared/reference/toxiproxy.md §2`.
Simulator-fault defaults follow runbook 000_030ea53f0735abf7.txt §6 (latency 500–2000 ms, error
rate 0.3).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.durations import Duration
from harness.faults.base import FaultBase, Scalar
from harness.faults.network import (
    BandwidthFault,
    LimitDataFault,
    NetLatencyFault,
    NetworkFault,
    ProxyDownFault,
    ResetPeerFault,
    SlicerFault,
    SlowCloseFault,
    TimeoutFault,
    ToxicFault,
)


class FaultScope(BaseModel):
    """Which calls a simulator fault hits: a path prefix (e.g. `/fhir/R4/Observation`) and/or a method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9/_.$-]*$", max_length=200)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None

    @model_validator(mode="after")
    def _something(self) -> FaultScope:
        if self.path is None and self.method is None:
            raise ValueError("a scope needs a path, a method or both")
        return self

    def body(self) -> dict[str, str]:
        return {k: v for k, v in (("path", self.path), ("method", self.method)) if v is not None}


class SimulatorFault(FaultBase):
    """A fault the target simulator's chaos middleware injects (admin API `/admin/chaos/<endpoint>`),
    on every call or, with `scope`, only on calls to a path and/or with a method."""

    scope: FaultScope | None = None

    def request_body(self) -> dict[str, object]:
        body: dict[str, object] = dict(self.chaos_body())
        if self.scope is not None:
            body["scope"] = self.scope.body()
        return body

    def params(self) -> dict[str, Scalar]:
        params: dict[str, Scalar] = dict(self.chaos_body())
        if self.scope is not None:
            params.update({f"scope_{k}": v for k, v in self.scope.body().items()})
        return params

    def chaos_endpoint(self) -> str:
        """The simulator admin path (under /admin/chaos/) that injects this fault."""
        raise NotImplementedError

    def chaos_body(self) -> dict[str, Scalar]:
        raise NotImplementedError


class OutageFault(SimulatorFault):
    """Every call to the target fails: an error status (default 503) or a dropped connection."""

    kind: Literal["outage"]
    mode: Literal["status", "drop"] = "status"
    status: int = Field(default=503, ge=500, le=599)

    def chaos_endpoint(self) -> str:
        return "outage"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"mode": self.mode, "status": self.status}


class LatencyFault(SimulatorFault):
    """Every call to the target is delayed by a uniform random time in [min, max]."""

    kind: Literal["latency"]
    min: Duration = 0.5
    max: Duration = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> LatencyFault:
        if self.min > self.max:
            from harness.scenario.issues import located  # here: harness.scenario imports this module

            raise located(("min",), f"min ({self.min:g}s) must not exceed max ({self.max:g}s)")
        return self

    def chaos_endpoint(self) -> str:
        return "latency"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"min_ms": round(self.min * 1000), "max_ms": round(self.max * 1000)}


class ErrorRateFault(SimulatorFault):
    """Each call to the target fails with `status` with probability `probability`."""

    kind: Literal["error_rate"]
    probability: float = Field(default=0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    status: int = Field(default=500, ge=400, le=599)

    def chaos_endpoint(self) -> str:
        return "error-rate"

    def chaos_body(self) -> dict[str, Scalar]:
        return {"probability": self.probability, "status": self.status}


_Faults = OutageFault | LatencyFault | ErrorRateFault | ToxicFault | ProxyDownFault
Fault = Annotated[_Faults, Field(discriminator="kind")]
FAULT_KINDS: tuple[str, ...] = tuple(get_args(model.model_fields["kind"].annotation)[0] for model in get_args(_Faults))

__all__ = [
    "FAULT_KINDS",
    "BandwidthFault",
    "ErrorRateFault",
    "Fault",
    "FaultBase",
    "LatencyFault",
    "LimitDataFault",
    "NetLatencyFault",
    "NetworkFault",
    "OutageFault",
    "ProxyDownFault",
    "ResetPeerFault",
    "SimulatorFault",
    "SlicerFault",
    "SlowCloseFault",
    "TimeoutFault",
]
