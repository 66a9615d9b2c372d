"""A Toxiproxy-compatible fault proxy: Toxiproxy 2.12's HTTP API and toxics, on asyncio.

Toxiproxy's server is a Go binary; the lab ships this one so it runs with no Docker and no binary
download. It speaks the same API (the unmodified `toxiproxy-python` client drives it), proxies real
TCP connections, and reproduces every toxic's semantics (`../shared/reference/toxiproxy.md`), so a
real Toxiproxy (`TOXIPROXY_URL`) and this server are interchangeable. Real mode only: real sockets,
real time (the injected Clock), a seeded `random.Random` for jitter, toxicity and slicing.

    async with serve_toxiproxy() as url:          # http://127.0.0.1:<port>
        ...                                       # POST {url}/proxies, toxics, /reset ...

Modules: `api` (routes and handlers), `proxy` (proxies, toxic chains, errors), `toxics` (the toxic
types), `server` (`serve_toxiproxy`), `cli` (`ehrlab proxy`); private: `_http` (HTTP/1.1 on h11),
`_link` (connections and links), `_pipeline` (chunks, channels, stubs), `_gojson` and `_goscan` (Go's
JSON texts), `_addr` (Go's address handling).

Where this server differs from Toxiproxy 2.12 on purpose: an empty listen host binds 127.0.0.1 (not
every interface); /version says `2.12.0-ehrlab`; a request body over 1 MiB gets 413; a bad `-config`
stops the server (exit 2) instead of being logged; slicer, bandwidth and reset_peer avoid a Go panic,
spin or API stall (see `toxics`).
"""

from simulators.toxiproxy.api import VERSION
from simulators.toxiproxy.server import ConfigError, ToxiproxyServer, serve_toxiproxy

__all__ = ["VERSION", "ConfigError", "ToxiproxyServer", "serve_toxiproxy"]
