"""Network faults, one vocabulary in both modes: Toxiproxy toxics on a real proxy (real mode) or
emulated at the httpx transport on the virtual clock (virtual mode).

- `toxics`: `Toxic` (Toxiproxy's own terms and units) and `NetworkControl`, what the fault driver calls;
- `transport`: `NetemTransport`, the in-process emulation (virtual mode);
- `toxiproxy`: `ToxiproxyApi` / `ToxiproxyProxy`, a Toxiproxy server driven over HTTP (real mode);
- `wire`: HTTP/1.1 wire sizes and cut-response parsing for the emulator.
"""

from harness.netem.toxics import TOXIC_TYPES, NetworkControl, NetworkControlError, Stream, Toxic, ToxicType
from harness.netem.toxiproxy import ProxyInfo, ToxiproxyApi, ToxiproxyProxy
from harness.netem.transport import NetemTransport

__all__ = [
    "TOXIC_TYPES",
    "NetemTransport",
    "NetworkControl",
    "NetworkControlError",
    "ProxyInfo",
    "Stream",
    "Toxic",
    "ToxicType",
    "ToxiproxyApi",
    "ToxiproxyProxy",
]
