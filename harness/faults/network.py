"""Network faults: what a Toxiproxy toxic does to the link between the integration and a vendor.

Each model here is one toxic type of `../shared/reference/toxiproxy.md §2` ("Toxics"), named once in
a scenario and injected by `harness.faults.driver` as a toxic on the vendor's proxy (real mode) or
on the in-process emulator (virtual mode, `harness.netem.transport`). `latency` is taken by the
simulator's own latency fault, so Toxiproxy's latency toxic is `net_latency` here.

Durations are written as everywhere in a scenario (`800ms`, `2s`), and sent to Toxiproxy in its
units (ms; µs for slicer's `delay`). A bare number other than 0 is refused for them: Toxiproxy users
write `latency: 800` meaning milliseconds, which a scenario would read as 800 seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.durations import parse_duration
from harness.faults.base import FaultBase, Scalar
from harness.netem.toxics import Toxic, ToxicType

#: Longest duration attribute a network fault takes (beyond an hour, use `timeout` or `proxy_down`).
MAX_TOXIC_DURATION_S = 3600.0
#: Largest integer attribute (bytes, KB/s) a toxic takes: a 32-bit int, which every Toxiproxy reads.
MAX_TOXIC_INT = 2**31 - 1


def _toxic_duration(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value != 0:
        raise ValueError(f"write a unit, e.g. '{value}ms' or '{value}s' (a bare number would be seconds)")
    return parse_duration(value)


ToxicDuration = Annotated[float, BeforeValidator(_toxic_duration), Field(le=MAX_TOXIC_DURATION_S)]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class NetworkFault(FaultBase):
    """A toxic on the target's link. `stream`: upstream = requests, downstream = responses."""

    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0, allow_inf_nan=False,
                            description="share of connections affected")

    def toxic_type(self) -> ToxicType:
        raise NotImplementedError

    def attributes(self) -> dict[str, int]:
        """The toxic's attributes in Toxiproxy's units."""
        raise NotImplementedError

    def toxic(self, name: str) -> Toxic:
        return Toxic(name=name, type=self.toxic_type(), stream=self.stream, toxicity=self.toxicity,
                     attributes=self.attributes())

    def params(self) -> dict[str, Scalar]:
        return {"toxic": self.toxic_type(), "stream": self.stream, "toxicity": self.toxicity, **self.attributes()}


class NetLatencyFault(NetworkFault):
    """Every chunk on the stream waits `latency` ± `jitter` (toxic `latency`)."""

    kind: Literal["net_latency"]
    latency: ToxicDuration
    jitter: ToxicDuration = 0.0

    def toxic_type(self) -> ToxicType:
        return "latency"

    def attributes(self) -> dict[str, int]:
        return {"latency": _ms(self.latency), "jitter": _ms(self.jitter)}


class BandwidthFault(NetworkFault):
    """The stream carries at most `rate` KB/s, 1 KB = 1000 bytes (toxic `bandwidth`)."""

    kind: Literal["bandwidth"]
    rate: int = Field(ge=1, le=MAX_TOXIC_INT, description="KB/s (1 KB = 1000 bytes)")

    def toxic_type(self) -> ToxicType:
        return "bandwidth"

    def attributes(self) -> dict[str, int]:
        return {"rate": self.rate}


class SlowCloseFault(NetworkFault):
    """The close of the stream is delayed by `delay` (toxic `slow_close`)."""

    kind: Literal["slow_close"]
    delay: ToxicDuration

    def toxic_type(self) -> ToxicType:
        return "slow_close"

    def attributes(self) -> dict[str, int]:
        return {"delay": _ms(self.delay)}


class TimeoutFault(NetworkFault):
    """The stream's data is dropped; the connection closes after `timeout`, never with 0 (toxic `timeout`)."""

    kind: Literal["timeout"]
    timeout: ToxicDuration = 0.0

    def toxic_type(self) -> ToxicType:
        return "timeout"

    def attributes(self) -> dict[str, int]:
        return {"timeout": _ms(self.timeout)}


class ResetPeerFault(NetworkFault):
    """The connection is reset (TCP RST) `timeout` after the first data on the stream (toxic `reset_peer`)."""

    kind: Literal["reset_peer"]
    timeout: ToxicDuration = 0.0

    def toxic_type(self) -> ToxicType:
        return "reset_peer"

    def attributes(self) -> dict[str, int]:
        return {"timeout": _ms(self.timeout)}


class SlicerFault(NetworkFault):
    """Data is cut into ~`average_size`-byte pieces sent `delay` apart (toxic `slicer`)."""

    kind: Literal["slicer"]
    average_size: int = Field(ge=1, le=MAX_TOXIC_INT, description="bytes")
    size_variation: int = Field(default=0, ge=0, le=MAX_TOXIC_INT, description="bytes; less than average_size")
    delay: ToxicDuration = 0.0

    @model_validator(mode="after")
    def _variation_below_average(self) -> SlicerFault:
        if self.size_variation >= self.average_size:
            from harness.scenario.issues import located  # here: harness.scenario imports this module

            raise located(("size_variation",), f"size_variation ({self.size_variation}) must be less than "
                                               f"average_size ({self.average_size})")
        return self

    def toxic_type(self) -> ToxicType:
        return "slicer"

    def attributes(self) -> dict[str, int]:
        return {"average_size": self.average_size, "size_variation": self.size_variation,
                "delay": round(self.delay * 1_000_000)}


class LimitDataFault(NetworkFault):
    """The connection closes once `bytes` bytes have passed on the stream (toxic `limit_data`)."""

    kind: Literal["limit_data"]
    bytes: int = Field(ge=0, le=MAX_TOXIC_INT)

    def toxic_type(self) -> ToxicType:
        return "limit_data"

    def attributes(self) -> dict[str, int]:
        return {"bytes": self.bytes}


class ProxyDownFault(FaultBase):
    """The proxy is disabled: new connections are refused, live ones closed (`enabled: false`)."""

    kind: Literal["proxy_down"]

    def params(self) -> dict[str, Scalar]:
        return {}


ToxicFault = (NetLatencyFault | BandwidthFault | SlowCloseFault | TimeoutFault | ResetPeerFault | SlicerFault
              | LimitDataFault)
