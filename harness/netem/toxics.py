"""A toxic as Toxiproxy defines it, and the control surface both modes implement.

`Toxic` is exactly what `POST /proxies/{proxy}/toxics` takes (`../shared/reference/toxiproxy.md §1`,
"JSON shapes"): a name unique on its proxy, a type, a stream, a toxicity and integer attributes in
Toxiproxy's units (ms for `latency`, `jitter`, `timeout` and slow_close's `delay`; KB/s, 1 KB = 1000
bytes, for `rate`; µs for slicer's `delay`; bytes for `bytes`, `average_size`, `size_variation`).

`NetworkControl` is what the fault driver calls to start and stop network faults on one vendor's
link: the in-process emulator (`harness.netem.transport.NetemTransport`, virtual mode) and a proxy on
a Toxiproxy server (`harness.netem.toxiproxy.ToxiproxyProxy`, real mode) both implement it. Failures
are `NetworkControlError`, whose message names the proxy and toxic, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

ToxicType = Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"]
Stream = Literal["upstream", "downstream"]

TOXIC_TYPES: tuple[ToxicType, ...] = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                                      "limit_data")

#: Attributes that are durations, and how many of their units make a second (reference §2, "Toxics").
TIME_ATTRIBUTES: dict[tuple[ToxicType, str], int] = {
    ("latency", "latency"): 1000,
    ("latency", "jitter"): 1000,
    ("slow_close", "delay"): 1000,
    ("timeout", "timeout"): 1000,
    ("reset_peer", "timeout"): 1000,
    ("slicer", "delay"): 1_000_000,
}


class NetworkControlError(Exception):
    """A network fault could not be applied or removed (the proxy refused it or could not be reached)."""


@dataclass(frozen=True, slots=True)
class Toxic:
    """One toxic, in Toxiproxy's own terms and units."""

    name: str
    type: ToxicType
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise ValueError(f"unknown toxic type {self.type!r}")
        if self.stream not in ("upstream", "downstream"):
            raise ValueError(f"stream must be upstream or downstream, not {self.stream!r}")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ValueError("toxicity must be in [0, 1]")
        for key, value in self.attributes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"attribute {key!r} must be a non-negative integer")

    def attr(self, key: str) -> int:
        """An attribute, 0 when absent (Toxiproxy's default for a missing key)."""
        return self.attributes.get(key, 0)

    def seconds(self, key: str) -> float:
        """A duration attribute in seconds."""
        return self.attr(key) / TIME_ATTRIBUTES[(self.type, key)]

    def json(self) -> dict[str, object]:
        """The request body of `POST /proxies/{proxy}/toxics`."""
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": dict(self.attributes)}

    def faster(self, scale: float) -> Toxic:
        """This toxic for a proxy whose wall clock runs `scale` times slower than the scenario's.

        Durations are divided by `scale` and a bandwidth rate multiplied by it, so that the toxic
        costs the same number of *scenario* seconds under `RealClock(scale)`. Rounded to Toxiproxy's
        integer units; a non-zero duration never rounds down to 0 (0 means "forever" for `timeout`).
        """
        if scale == 1.0:
            return self
        attributes = dict(self.attributes)
        for key, value in self.attributes.items():
            if (self.type, key) in TIME_ATTRIBUTES and value:
                attributes[key] = max(1, round(value / scale))
            elif self.type == "bandwidth" and key == "rate" and value:
                attributes[key] = max(1, round(value * scale))
        return Toxic(name=self.name, type=self.type, stream=self.stream, toxicity=self.toxicity,
                     attributes=attributes)


class NetworkControl(Protocol):
    """Start and stop network faults on one link (one proxy in front of one simulator)."""

    async def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic; it applies to live connections too. `NetworkControlError` on a duplicate name."""
        ...

    async def remove_toxic(self, name: str) -> None:
        """Remove a toxic by name. `NetworkControlError` if there is none."""
        ...

    async def set_enabled(self, enabled: bool) -> None:
        """Disable (connections refused, live ones closed) or re-enable the link."""
        ...
